// Checks KQL the way Azure Monitor's query service would before running it: parsed and analysed by Kusto's own
// language service (@kusto/language-service-next, the Kusto.Language library built for JavaScript) against the
// Application Insights tables the platform's queries read. An alert rule whose query does not analyse is refused at
// deployment, and a workbook tile with an error shows nothing, so the tests run every shipped query through this
// (tests/Marketing.Tests/OperationsContractTests.cs).
//
// Input: a JSON array of [where, query] pairs, from the file named by the first argument, else stdin. stdout: one line per query with an error or warning, "where: message".
// Exit code: 0 when every query is clean, 1 otherwise.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// The library is a Bridge.NET build: it defines the globals System, Bridge and Kusto.
require('@kusto/language-service-next/bridge.js');
require('@kusto/language-service-next/Kusto.Language.Bridge.js');

const { Symbols } = globalThis.Kusto.Language;
const { List$1 } = globalThis.System.Collections.Generic;

// The Application Insights tables with the columns the platform's queries may use: the classic names (what a query
// scoped to the Application Insights resource sees, as the alert rules and the workbook are) and the workspace names
// (the Log Analytics workspace behind it). Only columns the tables have: a column listed here that Azure does not
// have would let a broken query pass.
const classic = 'timestamp:datetime, customDimensions:dynamic, operation_Name:string, operation_Id:string, cloud_RoleName:string, cloud_RoleInstance:string';
const workspace = 'TimeGenerated:datetime, Properties:dynamic, OperationName:string, OperationId:string, AppRoleName:string, AppRoleInstance:string';
const tables = {
  customMetrics: [classic, 'name:string, value:real, valueCount:int, valueSum:real, valueMin:real, valueMax:real, valueStdDev:real'],
  requests: [classic, 'id:string, name:string, url:string, resultCode:string, duration:real, itemCount:int'],
  dependencies: [classic, 'id:string, target:string, type:string, name:string, data:string, resultCode:string, duration:real, itemCount:int'],
  traces: [classic, 'message:string, severityLevel:int, itemCount:int'],
  exceptions: [classic, 'problemId:string, type:string, outerMessage:string, itemCount:int'],
  AppMetrics: [workspace, 'Name:string, Sum:real, ItemCount:int, Min:real, Max:real'],
  AppRequests: [workspace, 'Id:string, Name:string, Url:string, ResultCode:string, DurationMs:real, ItemCount:int'],
  AppDependencies: [workspace, 'Id:string, Target:string, DependencyType:string, Name:string, Data:string, ResultCode:string, DurationMs:real, ItemCount:int'],
  AppTraces: [workspace, 'Message:string, SeverityLevel:int, ItemCount:int'],
  AppExceptions: [workspace, 'ProblemId:string, ExceptionType:string, OuterMessage:string, ItemCount:int'],
};
const members = new (List$1(Symbols.Symbol).ctor)();
for (const [name, [common, columns]] of Object.entries(tables))
  members.add(new Symbols.TableSymbol.$ctor7(name, `(${common}, ${columns})`, null));
const database = new Symbols.DatabaseSymbol.$ctor1('ApplicationInsights', members, false);
const globals = globalThis.Kusto.Language.GlobalState.Default.WithDatabase(database);

const queries = JSON.parse(readFileSync(process.argv[2] ?? 0, 'utf8'));
let failed = 0;
for (const [where, query] of queries) {
  const code = globalThis.Kusto.Language.KustoCode.ParseAndAnalyze(query, globals);
  const diagnostics = code.GetDiagnostics();
  const count = globalThis.System.Array.getCount(diagnostics, globalThis.Kusto.Language.Diagnostic);
  for (let i = 0; i < count; i++) {
    const d = globalThis.System.Array.getItem(diagnostics, i, globalThis.Kusto.Language.Diagnostic);
    const line = query.slice(0, d.Start).split('\n').length;
    console.log(`${where}: line ${line}: ${d.Severity}: ${d.Message}`);
  }
  if (count > 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
