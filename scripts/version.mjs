/**
 * After `changeset version` has moved the packages' versions: writes each public package's version into its
 * `src/internal/version.ts` (where it has one), which the programs print for `--version`. As Effect's own
 * scripts/version.mjs does.
 */
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { root } from "./bundle.mjs"

for (const entry of Fs.readdirSync(NodePath.join(root, "packages"), { withFileTypes: true })) {
  const directory = NodePath.join(root, "packages", entry.name)
  const file = NodePath.join(directory, "src", "internal", "version.ts")
  if (!entry.isDirectory() || !Fs.existsSync(file)) continue
  const { version } = JSON.parse(Fs.readFileSync(NodePath.join(directory, "package.json"), "utf8"))
  const source = Fs.readFileSync(file, "utf8")
  const updated = source.replace(/export const moduleVersion = "[^"]*"/, `export const moduleVersion = ${JSON.stringify(version)}`)
  if (updated !== source) {
    Fs.writeFileSync(file, updated)
    console.log(`${NodePath.relative(root, file)}: ${version}`)
  }
}
