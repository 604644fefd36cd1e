// @testbed/plugins: Service and environment plugins and their registry
export * as Builtins from "./Builtins.ts"
export * as Certificates from "./Certificates.ts"
export * as EnvironmentPlugin from "./EnvironmentPlugin.ts"
export * as LocalhostEnvironment from "./LocalhostEnvironment.ts"
export * as PluginRegistry from "./PluginRegistry.ts"
export * as Problems from "./Problems.ts"
export * as ServiceCommand from "./ServiceCommand.ts"
export * as ServicePlugin from "./ServicePlugin.ts"
