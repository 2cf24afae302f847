// The commissions pages' words (Commissions.tsx). Keys start with "com_"; both languages have every key.
export const en = {
  commissions: 'Commissions',
} as const;
export const zhCN: Record<keyof typeof en, string> = {
  commissions: '佣金',
};
