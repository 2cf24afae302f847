// The campaign detail page's words (CampaignDetail.tsx). Keys start with "detail_"; both languages have every key.
export const en = {
  detail_title: 'Campaign',
} as const;
export const zhCN: Record<keyof typeof en, string> = {
  detail_title: '活动',
};
