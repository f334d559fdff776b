// The docs site: English at /, Chinese at /zh/. Built by `npm run docs:build` (dead links fail the
// build); the reference pages marked "generated" are written by `npm run docs:reference` from the code.
import { defineConfig, type DefaultTheme } from 'vitepress';

const en: DefaultTheme.SidebarItem[] = [
  {
    text: 'Start',
    items: [
      { text: 'Quickstart', link: '/start/quickstart' },
      { text: "Alipay's sandbox", link: '/start/sandbox' },
      { text: 'Troubleshooting', link: '/start/troubleshooting' },
    ],
  },
  {
    text: 'Integrate',
    items: [
      { text: 'Payments', link: '/integrate/payments' },
      { text: 'Signing requests', link: '/integrate/signing' },
      { text: 'Webhooks', link: '/integrate/webhooks' },
      { text: 'Refunds', link: '/integrate/refunds' },
      { text: 'Late payments', link: '/integrate/late-payments' },
      { text: 'Cashier page', link: '/integrate/cashier' },
      { text: 'Rate limits', link: '/integrate/rate-limits' },
    ],
  },
  {
    text: 'Reference',
    items: [
      { text: 'API', link: '/reference/api' },
      { text: 'Configuration', link: '/reference/configuration' },
      { text: 'Error codes', link: '/reference/errors' },
      { text: 'Webhook events', link: '/reference/events' },
      { text: 'Merchant CLI', link: '/reference/cli' },
      { text: 'Metrics and logs', link: '/reference/metrics' },
    ],
  },
  {
    text: 'Operate',
    items: [
      { text: 'Deployment', link: '/operate/deployment' },
      { text: 'On-call runbook', link: '/operate/runbook' },
      { text: 'Reconciliation', link: '/operate/reconciliation' },
      { text: 'Alipay apps and certificates', link: '/operate/alipay-apps' },
      { text: 'Security', link: '/operate/security' },
      { text: 'Upgrades', link: '/operate/upgrades' },
    ],
  },
  {
    text: 'Internals',
    items: [
      { text: 'Design', link: '/internals/design' },
      { text: 'Performance', link: '/internals/performance' },
      { text: 'The chaos proof', link: '/internals/proof' },
      { text: 'The simulator', link: '/internals/simulator' },
    ],
  },
];

// Start and integrate are in Chinese; the rest links to the English pages.
const zh: DefaultTheme.SidebarItem[] = [
  {
    text: '开始',
    items: [
      { text: '快速上手', link: '/zh/start/quickstart' },
      { text: '支付宝沙箱', link: '/zh/start/sandbox' },
      { text: '常见问题', link: '/zh/start/troubleshooting' },
    ],
  },
  {
    text: '接入',
    items: [
      { text: '收款', link: '/zh/integrate/payments' },
      { text: '请求签名', link: '/zh/integrate/signing' },
      { text: 'Webhook 通知', link: '/zh/integrate/webhooks' },
      { text: '退款', link: '/zh/integrate/refunds' },
      { text: '迟到的付款', link: '/zh/integrate/late-payments' },
      { text: '收银台页面', link: '/zh/integrate/cashier' },
      { text: '限流', link: '/zh/integrate/rate-limits' },
    ],
  },
  { text: '参考（英文）', items: en[2]!.items },
  { text: '运维（英文）', items: en[3]!.items },
  { text: '内部设计（英文）', items: en[4]!.items },
];

export default defineConfig({
  title: 'durapay',
  description: 'A durable payment engine for Alipay face-to-face payments, on Temporal',
  cleanUrls: true,
  lastUpdated: false,
  // The site is read offline and built without a network: nothing is fetched from elsewhere.
  head: [],
  locales: {
    root: {
      label: 'English',
      lang: 'en',
      themeConfig: { nav: [{ text: 'Guide', link: '/start/quickstart' }, { text: 'API', link: '/reference/api' }], sidebar: en },
    },
    zh: {
      label: '简体中文',
      lang: 'zh-CN',
      link: '/zh/',
      description: '基于 Temporal 的支付宝当面付持久化支付引擎',
      themeConfig: {
        nav: [{ text: '指南', link: '/zh/start/quickstart' }, { text: 'API', link: '/reference/api' }],
        sidebar: zh,
        outline: { label: '本页内容' },
        docFooter: { prev: '上一页', next: '下一页' },
      },
    },
  },
  themeConfig: {
    search: { provider: 'local' },
    outline: { level: [2, 3] },
  },
});
