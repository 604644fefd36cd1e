// @testbed/experiments: Experiments from YAML (config, manager, test cases, steps, assertions, environments)
// The docker environment and its image builder load the engine's client: they are subpath imports
// (`@testbed/experiments/DockerEnvironment`, `@testbed/experiments/DockerImages`), not re-exported here, so a
// local run does not load dockerode (test/LazyModules.test.ts).
export * as Experiment from "./Experiment.ts"
export * as ExperimentConfig from "./ExperimentConfig.ts"
export * as ExperimentManager from "./ExperimentManager.ts"
export * as FileSchemas from "./FileSchemas.ts"
export * as Pattern from "./Pattern.ts"
export * as Plan from "./Plan.ts"
export * as ProcessTree from "./ProcessTree.ts"
export * as Progress from "./Progress.ts"
export * as RunSummary from "./RunSummary.ts"
export * as RunMetrics from "./RunMetrics.ts"
export * as RunTrace from "./RunTrace.ts"
export * as ScriptedExecutor from "./ScriptedExecutor.ts"
export * as TestCase from "./TestCase.ts"
export * as TestCaseExecutor from "./TestCaseExecutor.ts"
