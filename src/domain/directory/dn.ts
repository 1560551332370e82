/** A DN compared as the directory does: RDNs trimmed, case folded. */
export function normalizeDn(dn: string): string {
  return dn
    .split(/(?<!\\),/)
    .map((rdn) =>
      rdn
        .split('=')
        .map((s) => s.trim())
        .join('='),
    )
    .join(',')
    .toLowerCase();
}
