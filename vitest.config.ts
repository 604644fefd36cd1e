// One vitest project per package and app, found from the folders so a new package joins the suite by existing.
import { readdirSync, existsSync } from "node:fs"
import { defineConfig } from "vitest/config"

const workspaces = ["packages", "apps"].flatMap((root) =>
  existsSync(root)
    ? readdirSync(root, { withFileTypes: true })
        .filter((entry) => entry.isDirectory() && existsSync(`${root}/${entry.name}/test`))
        .map((entry) => ({ root, name: entry.name }))
    : []
)

export default defineConfig({
  test: {
    projects: workspaces.map(({ root, name }) => ({
      extends: true,
      test: {
        name,
        root: `${root}/${name}`,
        include: ["test/**/*.test.ts"]
      }
    })),
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: integration tests spawn processes, brokers and containers of their own.
    maxWorkers: 2
  }
})
