-- A live socket's lease in one round trip (it was four: begin, lock, count-and-insert, commit).
-- The advisory lock on (orbit, user) makes concurrent upgrades on any process count one after
-- another; the insert, a statement of this volatile function after the lock, takes a snapshot
-- that sees every lease committed before the lock was granted. The lock and the row both end
-- with the calling statement's transaction.
CREATE OR REPLACE FUNCTION take_live_socket_lease(p_group uuid, p_user uuid, p_holder uuid, p_ttl_secs double precision, p_max integer)
RETURNS uuid
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  lease uuid;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('live:' || p_group::text || ':' || p_user::text, 0));
  INSERT INTO live_socket_leases (group_id, user_id, holder, expires_at)
  SELECT p_group, p_user, p_holder, now() + make_interval(secs => p_ttl_secs)
  WHERE (SELECT count(*) FROM live_socket_leases WHERE group_id = p_group AND user_id = p_user AND expires_at > now()) < p_max
  RETURNING id INTO lease;
  RETURN lease;
END
$$;
