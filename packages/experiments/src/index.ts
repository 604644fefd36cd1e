// @testbed/experiments: Experiments from YAML (config, manager, test cases, steps, assertions, environments)
