/**
 * PostgreSQL: the advisory locks' keys, the workspace's and the migrations'.
 */

/**
 * The advisory lock's key: a namespace of ours and a 32-bit FNV-1a hash of the workspace's name. Two names that hash
 * alike only take turns; the two-key form keeps clear of an application's own single-key advisory locks.
 */
export const advisoryNamespace = 0x1c5c_0a11
export const migrationsKey = [advisoryNamespace + 1, 0] as const

export const workspaceKey = (workspace: string): readonly [number, number] => {
  let hash = 0x811c9dc5
  for (const byte of new TextEncoder().encode(workspace)) {
    hash ^= byte
    hash = Math.imul(hash, 0x01000193)
  }
  return [advisoryNamespace, hash | 0]
}
