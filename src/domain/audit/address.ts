// Client addresses in the audit trail are kept only to the network: /24 for IPv4, /48 for IPv6,
// enough to tell "from home" from "from elsewhere", not enough to point at one device.

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** `a.b.c.0/24`, `x:y:z::/48`, or null for anything that is not an IP address (e.g. "unknown"). */
export function truncateAddress(address: string | null | undefined): string | null {
  if (!address) return null;
  const ip = address.trim();
  const v4 = IPV4.exec(ip);
  if (v4) return v4.slice(1, 4).every((o) => Number(o) <= 255) && Number(v4[4]) <= 255 ? `${v4[1]}.${v4[2]}.${v4[3]}.0/24` : null;
  const groups = expandIpv6(ip);
  if (!groups) return null;
  // IPv4-mapped (::ffff:a.b.c.d): the IPv4 rule.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.0/24`;
  }
  return `${groups.slice(0, 3).map((g) => g.toString(16)).join(':')}::/48`;
}

/** The eight 16-bit groups of an IPv6 address (zone and dotted IPv4 tail allowed), or null. */
function expandIpv6(ip: string): number[] | null {
  const bare = ip.replace(/^\[|\]$/g, '').split('%')[0]!;
  if (!bare.includes(':')) return null;
  let text = bare;
  const tail = /(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(text);
  if (tail) {
    const o = tail[1]!.split('.').map(Number);
    if (o.some((n) => n > 255)) return null;
    text = text.slice(0, -tail[1]!.length) + `${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const part = (s: string) => (s ? s.split(':') : []);
  const head = part(halves[0]!);
  const rest = halves.length === 2 ? part(halves[1]!) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  if (!all.every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return null;
  return all.map((g) => parseInt(g, 16));
}
