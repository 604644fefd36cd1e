// @testbed/stages: named topologies of Docker containers and networks (up, down, status, connect, exec), and
// network labs on them: links, impairments, graded checks, instances, graphs.
export * as Catalog from "./Catalog.ts"
export * as Check from "./Check.ts"
export * as ClassTable from "./ClassTable.ts"
export * as Compose from "./Compose.ts"
export * as Docker from "./Docker.ts"
export * as DockerExecRunner from "./DockerExecRunner.ts"
export * as Graph from "./Graph.ts"
export * as HostSettings from "./HostSettings.ts"
export * as Impairment from "./Impairment.ts"
export * as Link from "./Link.ts"
export * as Stage from "./Stage.ts"
export * as StageError from "./StageError.ts"
export * as Stages from "./Stages.ts"
export * as StageState from "./StageState.ts"
// Shapes the public API takes (`Docker.exec`, `Stages.connect`), defined with the internal exec helpers.
export type { ExecSink, InteractiveIo } from "./internal/exec.ts"
