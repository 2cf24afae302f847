// The create/edit form's words (CampaignForm.tsx). Keys start with "form_"; both languages have every key.
export const en = {
  form_newTitle: 'New campaign',
  form_editTitle: 'Edit campaign',
} as const;
export const zhCN: Record<keyof typeof en, string> = {
  form_newTitle: '新建活动',
  form_editTitle: '编辑活动',
};
