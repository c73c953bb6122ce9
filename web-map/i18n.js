// The wall's words in Chinese and English. Chinese is the default where the browser prefers it.

export const STRINGS = {
  zh: {
    title: '网格化治理指挥大屏',
    live: '实时更新',
    signin: '登录',
    signout: '退出',
    token: '访问令牌',
    signin_help: '请输入 safegrid 访问令牌（由管理员用 safegrid token 生成）。',
    signin_failed: '令牌无效或已吊销。',
    public_only: '公众令牌只能查询最近的安保点，不能打开指挥大屏。',
    layers: '图层',
    window: '时间窗（天）',
    hexbins: '低缩放级别用六边形汇总事件',
    stats: '统计',
    open_incidents: '未结事件',
    by_priority: '按优先级',
    by_district: '按辖区',
    top_grids: '事件最多的网格',
    counts: '各图层数量',
    priority: '优先级',
    grids: '网格',
    incidents: '事件',
    incidents_h3: '事件热力（六边形）',
    rental_housing: '出租屋',
    posts: '安保点/警务室',
    responders: '处置力量',
    key_personnel: '重点人员',
    which_grid: '所在网格',
    outside: '不在任何网格内',
    nearest_grid: '最近的网格',
    distance: '距离',
    manager: '网格员',
    code: '编码',
    name: '名称',
    level: '层级',
    cluster: '聚合',
    items: '个',
    language: 'English',
    error: '出错了',
  },
  en: {
    title: 'Grid management command wall',
    live: 'live updates',
    signin: 'Sign in',
    signout: 'Sign out',
    token: 'Access token',
    signin_help: 'Enter a safegrid access token (an administrator makes one with safegrid token).',
    signin_failed: 'The token is not valid or was revoked.',
    public_only: 'A public token only looks up the nearest security post; it cannot open the wall.',
    layers: 'Layers',
    window: 'Time window (days)',
    hexbins: 'Hexbins for incidents at low zoom',
    stats: 'Statistics',
    open_incidents: 'Open incidents',
    by_priority: 'By priority',
    by_district: 'By district',
    top_grids: 'Grids with most incidents',
    counts: 'Items per layer',
    priority: 'Priority',
    grids: 'Grids',
    incidents: 'Incidents',
    incidents_h3: 'Incident hexbins',
    rental_housing: 'Rental housing',
    posts: 'Security posts',
    responders: 'Responders',
    key_personnel: 'Key personnel',
    which_grid: 'Grid here',
    outside: 'Outside every grid',
    nearest_grid: 'Nearest grid',
    distance: 'Distance',
    manager: 'Grid manager',
    code: 'Code',
    name: 'Name',
    level: 'Level',
    cluster: 'Cluster',
    items: 'items',
    language: '中文',
    error: 'Error',
  },
};

/** The language to start in: a saved choice, else the browser's preference. */
export function initialLanguage() {
  const saved = localStorage.getItem('sg.lang');
  if (saved === 'zh' || saved === 'en') return saved;
  const prefs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'zh'];
  for (const p of prefs) {
    const l = String(p).toLowerCase();
    if (l.startsWith('zh')) return 'zh';
    if (l.startsWith('en')) return 'en';
  }
  return 'zh';
}
