// The home page's to-do words (Home.tsx, "Waiting for a decision"). Keys start with "home_"; both languages have every key.
export const en = {
  home_todo: 'Waiting for a decision',
  home_todoAsOf: 'Counted at {time} ({zone})',
  home_waitingCampaigns: 'Campaigns submitted for approval',
  home_waitingTopUps: 'Budget top-ups',
  home_waitingPayouts: 'Payout batches',
  home_openApprovals: 'Open the approvals',
} as const;
export const zhCN: Record<keyof typeof en, string> = {
  home_todo: '待办审批',
  home_todoAsOf: '统计于 {time}（{zone}）',
  home_waitingCampaigns: '待审批活动',
  home_waitingTopUps: '待审批预算追加',
  home_waitingPayouts: '待审批佣金结算批次',
  home_openApprovals: '前往审批',
};
