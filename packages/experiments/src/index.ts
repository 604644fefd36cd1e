// @testbed/experiments: Experiments from YAML (config, manager, test cases, steps, assertions, environments)
export * as Experiment from "./Experiment.ts"
export * as ExperimentConfig from "./ExperimentConfig.ts"
export * as ExperimentManager from "./ExperimentManager.ts"
export * as Pattern from "./Pattern.ts"
export * as Plan from "./Plan.ts"
export * as Progress from "./Progress.ts"
export * as TestCase from "./TestCase.ts"
export * as TestCaseExecutor from "./TestCaseExecutor.ts"
