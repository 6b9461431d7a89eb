// Chinese first, English switchable: one dictionary, every visible string through t().
import { useEffect, useState } from "preact/hooks";

export type Lang = "zh" | "en";

const zh = {
  app_title: "家校社协同",
  lang_switch: "English",
  lang_switch_label: "切换到英文",
  skip: "跳到主要内容",
  online: "在线",
  offline: "离线",
  sign_in: "登录",
  sign_in_dev: "开发环境：选择一位演示用户登录",
  sign_in_oidc: "请通过单位统一身份认证登录（本环境未配置 OIDC）。",
  sign_out: "退出登录",
  signed_in_as: "当前用户",
  session_expired: "登录已过期，请重新登录；未发送的家访会保留在本机。",
  role_teacher: "教师",
  role_school_admin: "学校管理员",
  role_mental_health_teacher: "心理健康教师（个案负责人）",
  role_department_partner: "部门合作方",
  role_bureau_admin: "教育局管理员",
  role_district_admin: "区县管理员",
  role_auditor: "审计员",
  not_yet: "此角色的界面尚未完成。",
  nav_assignments: "我的家访任务",
  nav_record: "记录家访",
  nav_outbox: "待发送",
  assignments: "我的家访任务",
  refresh: "刷新",
  refreshing: "正在刷新…",
  cached_at: "本机数据更新于",
  no_assignments: "暂无家访任务。",
  progress: "进度",
  done_of_target: "已完成 {done} / 目标 {target}",
  family: "家庭",
  children: "学生",
  status_assigned: "待家访",
  status_completed: "已完成",
  status_missed: "未见到",
  status_removed: "已撤销",
  pending_upload: "本机有待发送记录",
  record_visit: "记录家访",
  record_for: "记录此家庭的家访",
  pick_assignment: "家访对象",
  choose: "请选择",
  visit_status: "家访结果",
  completed: "已完成家访",
  missed: "未能家访",
  visited_on: "家访日期",
  mode: "家访方式",
  mode_in_home: "入户",
  mode_online: "线上",
  mode_phone: "电话",
  mode_at_school: "在校约谈",
  duration: "时长（分钟）",
  participants: "参与人员",
  colleagues: "同行教师工号（逗号分隔）",
  guardians: "在场监护人编号（逗号分隔）",
  checklist: "“十必访”清单",
  answer_yes: "是",
  answer_no: "否",
  answer_not_applicable: "不适用",
  note_why: "说明（选“否”时必填）",
  findings: "发现的问题（按学生）",
  child: "学生",
  add_finding: "为该生添加发现",
  remove_finding: "删除此发现",
  category: "类别",
  severity: "严重程度",
  note: "备注",
  guidance: "指导主题",
  miss_reason: "未能家访的原因",
  save_visit: "保存（离线也可）",
  saved: "已保存到本机，联网后自动发送。",
  outbox: "待发送的家访",
  outbox_empty: "没有待发送的家访。",
  send_now: "立即发送",
  unsent_day: "有家访记录超过一天未发送，请尽快联网。",
  storage_persisted: "已申请持久存储：本机记录不会被浏览器自动清除。",
  storage_not_persisted: "浏览器未授予持久存储：请勿清除浏览器数据。",
  q_queued: "排队中",
  q_sending: "发送中",
  q_stored: "已保存",
  q_rejected: "被退回",
  q_conflict: "冲突",
  receipt: "回执",
  reason: "原因",
  urgent: "紧急",
  discard: "删除本机记录",
  recorded_at: "记录于",
  cat_left_behind: "留守",
  cat_orphaned_or_unaccompanied: "孤儿或事实无人抚养",
  cat_disability: "残疾",
  cat_family_hardship: "家庭困难",
  cat_mental_health: "心理健康",
  cat_guardianship_gap: "监护缺失",
  cat_family_conflict: "家庭矛盾",
  cat_safety_risk: "安全风险",
  cat_health_need: "健康需求",
  cat_learning_difficulty: "学习困难",
  sev_low: "低",
  sev_medium: "中",
  sev_high: "高",
  sev_urgent: "紧急",
  miss_family_unavailable: "家长不在",
  miss_family_declined: "家长拒绝",
  miss_teacher_unavailable: "教师无法前往",
  miss_other: "其他",
  cancel: "取消",
  load_failed: "无法连接服务器，显示本机保存的数据。",
};

export type Key = keyof typeof zh;

const en: Record<Key, string> = {
  app_title: "Home–School–Society",
  lang_switch: "中文",
  lang_switch_label: "Switch to Chinese",
  skip: "Skip to main content",
  online: "Online",
  offline: "Offline",
  sign_in: "Sign in",
  sign_in_dev: "Development: sign in as a demo user",
  sign_in_oidc: "Sign in with your organisation's identity provider (OIDC is not configured here).",
  sign_out: "Sign out",
  signed_in_as: "Signed in as",
  session_expired: "Your sign-in has expired: sign in again. Unsent visits stay on this device.",
  role_teacher: "Teacher",
  role_school_admin: "School admin",
  role_mental_health_teacher: "Mental health teacher (carer)",
  role_department_partner: "Department partner",
  role_bureau_admin: "Bureau admin",
  role_district_admin: "District admin",
  role_auditor: "Auditor",
  not_yet: "The screens for this role are not built yet.",
  nav_assignments: "My visits",
  nav_record: "Record a visit",
  nav_outbox: "Outbox",
  assignments: "My visit assignments",
  refresh: "Refresh",
  refreshing: "Refreshing…",
  cached_at: "On this device since",
  no_assignments: "No assignments yet.",
  progress: "Progress",
  done_of_target: "{done} done of {target}",
  family: "Family",
  children: "Children",
  status_assigned: "To visit",
  status_completed: "Completed",
  status_missed: "Missed",
  status_removed: "Withdrawn",
  pending_upload: "Unsent record on this device",
  record_visit: "Record a visit",
  record_for: "Record a visit to this family",
  pick_assignment: "Family to visit",
  choose: "Choose",
  visit_status: "Outcome",
  completed: "Visit completed",
  missed: "Visit missed",
  visited_on: "Date of the visit",
  mode: "Mode",
  mode_in_home: "At home",
  mode_online: "Online",
  mode_phone: "Phone",
  mode_at_school: "At school",
  duration: "Duration (minutes)",
  participants: "Participants",
  colleagues: "Colleagues' staff ids (comma separated)",
  guardians: "Guardians present, ids (comma separated)",
  checklist: "The Ten Requirements",
  answer_yes: "Yes",
  answer_no: "No",
  answer_not_applicable: "Not applicable",
  note_why: "Note (required for “No”)",
  findings: "Findings per child",
  child: "Child",
  add_finding: "Add a finding for this child",
  remove_finding: "Remove this finding",
  category: "Category",
  severity: "Severity",
  note: "Note",
  guidance: "Guidance topics",
  miss_reason: "Why the visit did not happen",
  save_visit: "Save (works offline)",
  saved: "Saved on this device; it is sent when the network is there.",
  outbox: "Visits waiting to be sent",
  outbox_empty: "Nothing waiting to be sent.",
  send_now: "Send now",
  unsent_day: "Some visits have been unsent for more than a day: get online soon.",
  storage_persisted: "Persistent storage granted: the browser will not clear these records.",
  storage_not_persisted: "Persistent storage not granted: do not clear the browser's data.",
  q_queued: "Queued",
  q_sending: "Sending",
  q_stored: "Stored",
  q_rejected: "Rejected",
  q_conflict: "Conflict",
  receipt: "Receipt",
  reason: "Reason",
  urgent: "Urgent",
  discard: "Delete from this device",
  recorded_at: "Recorded",
  cat_left_behind: "Left behind",
  cat_orphaned_or_unaccompanied: "Orphaned or unaccompanied",
  cat_disability: "Disability",
  cat_family_hardship: "Family hardship",
  cat_mental_health: "Mental health",
  cat_guardianship_gap: "Guardianship gap",
  cat_family_conflict: "Family conflict",
  cat_safety_risk: "Safety risk",
  cat_health_need: "Health need",
  cat_learning_difficulty: "Learning difficulty",
  sev_low: "Low",
  sev_medium: "Medium",
  sev_high: "High",
  sev_urgent: "Urgent",
  miss_family_unavailable: "Family not at home",
  miss_family_declined: "Family declined",
  miss_teacher_unavailable: "Teacher could not come",
  miss_other: "Other",
  cancel: "Cancel",
  load_failed: "The server cannot be reached: showing what this device has.",
};

const DICTS: Record<Lang, Record<Key, string>> = { zh, en };
const STORAGE_KEY = "hss.lang";
let current: Lang = localStorage.getItem(STORAGE_KEY) === "en" ? "en" : "zh";
const listeners = new Set<(l: Lang) => void>();

function apply(lang: Lang): void {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.title = DICTS[lang].app_title;
}
apply(current);

export function lang(): Lang {
  return current;
}

export function setLang(next: Lang): void {
  current = next;
  localStorage.setItem(STORAGE_KEY, next);
  apply(next);
  listeners.forEach((fn) => fn(next));
}

export function t(key: Key, vars: Record<string, string | number> = {}): string {
  return DICTS[current][key].replace(/\{(\w+)\}/g, (_, name: string) => String(vars[name] ?? ""));
}

/** A label from the vocabulary: the dictionary's when it has one (prefix + code), else the code itself. */
export function label(prefix: string, code: string): string {
  const key = `${prefix}_${code}`;
  return key in zh ? t(key as Key) : code;
}

/** Re-render on a language switch. */
export function useLang(): Lang {
  const [value, setValue] = useState(current);
  useEffect(() => {
    listeners.add(setValue);
    return () => void listeners.delete(setValue);
  }, []);
  return value;
}
