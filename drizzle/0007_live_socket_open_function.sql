-- A live socket's admission in one round trip (it was three: membership for the route's 404, the
-- lease, then the starting point in the room). The first statement reads the orbit's head, the
-- user's membership and the session in one snapshot, which is the socket's starting point: a
-- removal committed before it leaves no member here, one committed after it puts member_left
-- above `head`. Only a live member takes a lease (take_live_socket_lease, migration 0006).
-- No orbit: a row of nulls.
CREATE OR REPLACE FUNCTION open_live_socket(p_group uuid, p_user uuid, p_session uuid, p_holder uuid, p_ttl_secs double precision, p_max integer)
RETURNS TABLE (joined timestamptz, head bigint, session_live boolean, lease uuid)
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
  SELECT m.joined_at, g.last_seq, EXISTS (SELECT 1 FROM sessions s WHERE s.id = p_session AND s.user_id = p_user AND s.revoked_at IS NULL)
    INTO joined, head, session_live
    FROM groups g LEFT JOIN group_members m ON m.group_id = g.id AND m.user_id = p_user
    WHERE g.id = p_group;
  IF joined IS NOT NULL AND session_live THEN
    lease := take_live_socket_lease(p_group, p_user, p_holder, p_ttl_secs, p_max);
  END IF;
  RETURN NEXT;
END
$$;
