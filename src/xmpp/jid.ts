/** A JID split into its parts (RFC 7622), without stringprep: Perch logins and room ids only. */
export interface Jid {
  local: string;
  domain: string;
  resource: string;
}

export function parseJid(s: string): Jid {
  const slash = s.indexOf('/');
  const bare = slash === -1 ? s : s.slice(0, slash);
  const resource = slash === -1 ? '' : s.slice(slash + 1);
  const at = bare.indexOf('@');
  return {
    local: at === -1 ? '' : bare.slice(0, at),
    domain: (at === -1 ? bare : bare.slice(at + 1)).toLowerCase(),
    resource,
  };
}

/** A room's JID: its id at the multi-user chat service (`42@conference.example.org`). */
export function roomJid(roomId: number, mucDomain: string): string {
  return `${roomId}@${mucDomain}`;
}

/** The room id of a room JID's local part, or undefined when it is not one. */
export function roomIdOf(jid: Jid): number | undefined {
  if (!/^[1-9][0-9]{0,15}$/.test(jid.local)) return undefined;
  const id = Number(jid.local);
  return Number.isSafeInteger(id) ? id : undefined;
}
