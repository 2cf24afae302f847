// The console's words in its two languages. The browser's preferred language picks one; the switch in the header
// overrides it for the session. Keys are the same in both: a missing key is a type error.
const en = {
  appTitle: 'Marketing console',
  skipToContent: 'Skip to content',
  language: 'Language',
  navigation: 'Main',
  home: 'At a glance',
  signIn: 'Sign in',
  signOut: 'Sign out',
  signedInAs: 'Signed in as {sub} ({role})',
  localSignInTitle: 'Local sign-in',
  localSignInHint: 'Only on a local run (Development): mints a dev token for the user and role you choose.',
  subject: 'User id',
  role: 'Role',
  signInFailed: 'Sign-in failed: {detail}',
  loading: 'Loading…',
  loadFailed: 'Could not load the figures: {detail}',
  retry: 'Try again',
  running: 'Campaigns running',
  ending7: 'Ending within 7 days',
  lowBudget: 'Budget below 5 % left',
  expiring24: 'Coupons expiring within 24 h',
  todayVsYesterday: 'Today against yesterday',
  figure: 'Figure',
  today: 'Today',
  yesterday: 'Yesterday',
  claims: 'Claims',
  redemptions: 'Redemptions',
  gmv: 'GMV',
  discount: 'Discount',
  endingSoon: 'Ending soon',
  lowOnBudget: 'Low on budget',
  campaign: 'Campaign',
  claimEndsAt: 'Claims end',
  budgetLeft: 'Budget left',
  none: 'None',
  asOf: 'Figures as of {time} ({lag} ago), time zone {zone}',
  notComputed: 'No figures yet: AggregateStats has not run.',
  andMore: 'and {count} more',
} as const;

export type Key = keyof typeof en;
type Dictionary = Record<Key, string>;

const zhCN: Dictionary = {
  appTitle: '营销运营控制台',
  skipToContent: '跳到正文',
  language: '语言',
  navigation: '主导航',
  home: '概览',
  signIn: '登录',
  signOut: '退出登录',
  signedInAs: '已登录：{sub}（{role}）',
  localSignInTitle: '本地登录',
  localSignInHint: '仅限本地运行（Development）：为所选用户和角色签发开发令牌。',
  subject: '用户 ID',
  role: '角色',
  signInFailed: '登录失败：{detail}',
  loading: '加载中…',
  loadFailed: '无法加载数据：{detail}',
  retry: '重试',
  running: '进行中的活动',
  ending7: '7 天内结束',
  lowBudget: '预算剩余不足 5%',
  expiring24: '24 小时内过期的券',
  todayVsYesterday: '今日与昨日对比',
  figure: '指标',
  today: '今日',
  yesterday: '昨日',
  claims: '领取',
  redemptions: '核销',
  gmv: '成交额',
  discount: '优惠金额',
  endingSoon: '即将结束',
  lowOnBudget: '预算紧张',
  campaign: '活动',
  claimEndsAt: '领取截止',
  budgetLeft: '剩余预算',
  none: '无',
  asOf: '数据截至 {time}（{lag}前），时区 {zone}',
  notComputed: '暂无数据：AggregateStats 尚未运行。',
  andMore: '另有 {count} 个',
};

export const languages = { en: { name: 'English', words: en as Dictionary }, 'zh-CN': { name: '简体中文', words: zhCN } } as const;
export type Language = keyof typeof languages;

export function preferredLanguage(): Language {
  const chosen = sessionStorage.getItem('console.language');
  if (chosen === 'en' || chosen === 'zh-CN') return chosen;
  return (navigator.languages ?? [navigator.language]).some((l) => l.toLowerCase().startsWith('zh')) ? 'zh-CN' : 'en';
}

export function translator(language: Language) {
  const words = languages[language].words;
  return (key: Key, values: Record<string, string | number> = {}) =>
    words[key].replace(/\{(\w+)\}/g, (_, name: string) => String(values[name] ?? `{${name}}`));
}
export type Translate = ReturnType<typeof translator>;
