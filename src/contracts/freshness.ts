/** The scheduled freshness check (its report is built by src/activities/monitor.ts from src/monitor/status.ts). */
export const FRESHNESS_WORKFLOW = 'freshnessWorkflow';
