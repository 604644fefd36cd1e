// @testbed/replay: Record a TCP session through a proxy, replay the server side and fail on the first divergence
export * as Action from "./Action.ts"
export * as BlobStore from "./BlobStore.ts"
export * as CheckReport from "./CheckReport.ts"
export * as Fault from "./Fault.ts"
export * as Nds1 from "./nds/Nds1.ts"
export * as Nds2 from "./nds/Nds2.ts"
export * as Plan from "./Plan.ts"
export * as RecordProxy from "./RecordProxy.ts"
export * as ReplayError from "./ReplayError.ts"
export * as ReplayServer from "./ReplayServer.ts"
export * as Script from "./Script.ts"
export * as ScriptLoader from "./ScriptLoader.ts"
export * as ScriptWriter from "./ScriptWriter.ts"
export * as TestLauncher from "./TestLauncher.ts"
// Errors of the public API (`ReplayServer.serve`, `RecordProxy.record`, `TestLauncher.run`) defined with the
// internal TCP helpers: importable by name so a caller can catch them.
export { ConnectFailed, ConnectionLost, ListenFailed } from "./internal/Tcp.ts"
