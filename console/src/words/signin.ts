// The sign-in page's words for Entra ID (SignIn.tsx; the local sign-in's are in i18n.ts). Keys start with "signin_".
export const en = {
  signin_title: 'Sign in',
  signin_entraHint: 'With your organisation account (Microsoft Entra ID).',
  signin_entra: 'Sign in with Microsoft',
  signin_completing: 'Signing you in…',
  signin_noRoles: 'Signed in, but your account has no role in this app: ask an admin to assign you one (operator, approver, finance or admin).',
} as const;
export const zhCN: Record<keyof typeof en, string> = {
  signin_title: '登录',
  signin_entraHint: '使用您的组织账号（Microsoft Entra ID）。',
  signin_entra: '使用 Microsoft 账号登录',
  signin_completing: '正在登录…',
  signin_noRoles: '已登录，但您的账号在本应用中没有角色：请管理员为您分配（operator、approver、finance 或 admin）。',
};
