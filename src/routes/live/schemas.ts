import { z } from '@hono/zod-openapi';

export const TicketResponse = z
  .object({
    ticket: z.string().openapi({ description: 'Single use; pass as ?ticket= to GET /api/groups/{groupId}/live.' }),
    expires_in: z.literal(30).openapi({ description: 'Seconds until the ticket expires.' }),
  })
  .openapi('LiveTicket');

export const LiveQuery = z.object({
  after_seq: z.coerce
    .number()
    .int()
    .min(0)
    .max(Number.MAX_SAFE_INTEGER)
    .optional()
    .openapi({ param: { name: 'after_seq', in: 'query' }, description: 'Replay every event with a larger seq before `ready`.' }),
  ticket: z
    .string()
    .max(128)
    .optional()
    .openapi({ param: { name: 'ticket', in: 'query' }, description: 'From POST /api/groups/{groupId}/live/ticket, instead of the Authorization header.' }),
});

export const LIVE_PROTOCOL = `WebSocket upgrade. Authenticate with \`Authorization: Bearer <access token>\` or \`?ticket=\`;
401, 404 and 429 (at most 5 sockets per user per orbit) answer as plain HTTP before the upgrade.
Pending members may listen.

Server frames: events \`{type, group_id, seq, at, actor_id, data}\` with seq strictly increasing, never a gap
or a duplicate; \`{"type":"ready","seq":N}\` once the replay (\`?after_seq\`) is done, N being the last seq sent;
\`{"type":"resync_required","seq":N}\` instead of a replay of more than 1,000 events or 8 MiB (reload through
the list endpoints; the socket goes on from N); \`{"type":"typing","user_id","thread_id"}\`; \`{"type":"pong"}\`;
\`{"type":"authorized","expires_at"}\` after a renewal; \`{"type":"error","code","message"}\` for a frame that
cannot be used (the socket stays).

Client frames (JSON text, at most 64 KiB, else close 1009; more than 20 in 10 s close 1008):
\`{"type":"ping"}\` (exactly these bytes) → \`{"type":"pong"}\`; \`{"type":"auth","access_token":…}\` renews
the socket's authorization (else it closes 4401 when the token that opened it expires; a ticket's socket
counts 15 minutes from the upgrade); \`{"type":"typing","thread_id":…}\` for a thread of this orbit, at most one
per 2 s (extra ones are dropped), relayed to the other members' sockets and never stored.

Close codes: 1001 server shutting down; 1008 too many frames; 1009 frame too large; 1011 replay failed
(reconnect); 1013 the reader fell more than 4 MiB behind (reconnect with after_seq); 4401 token expired,
session ended or account deleted; 4403 no longer a member (after the member_left event) or orbit deleted.`;
