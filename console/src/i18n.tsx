// The console's languages: zh-CN first, English second, switched in the header and remembered in
// localStorage. antd's own zh_CN / en_US locales translate its components; this dictionary the
// console's own words. Every key is in both languages (the English table is typed by the Chinese).
import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from 'react';
import dayjs from 'dayjs';
import 'dayjs/locale/zh-cn';
import 'dayjs/locale/en';

export type Lang = 'zh-CN' | 'en';
export const LANG_KEY = 'durapay.console.lang';

const zh = {
  'app.title': 'durapay 控制台',
  'app.language': '语言',
  'app.logout': '退出登录',
  'app.role.operator': '运营人员',
  'app.role.merchant': '商户 {id}',

  'nav.orders': '订单',
  'nav.webhooks': 'Webhook',
  'nav.review': '待复核订单',
  'nav.timeline': '订单时间线',
  'nav.audit': '审计日志',
  'nav.merchants': '商户',

  'login.title': '登录 durapay 控制台',
  'login.email': '邮箱',
  'login.password': '密码',
  'login.submit': '登录',
  'login.expired': '会话已过期，请重新登录',
  'login.required': '请先登录',
  'login.failed': '邮箱或密码错误',
  'login.tooMany': '登录尝试次数过多，请稍后再试',
  'login.loggedOut': '已退出登录',

  'common.search': '查询',
  'common.reset': '重置',
  'common.refresh': '刷新',
  'common.actions': '操作',
  'common.cancel': '取消',
  'common.confirm': '确定',
  'common.close': '关闭',
  'common.loading': '加载中…',
  'common.notFound': '未找到',
  'common.none': '无',
  'common.firstPage': '第一页',
  'common.prevPage': '上一页',
  'common.nextPage': '下一页',
  'common.olderPage': '更早',
  'common.yes': '是',
  'common.no': '否',
  'common.back': '返回',
  'common.forbidden': '无权访问此页面',
  'common.error': '请求失败：{message}',
  'common.csrf': '请求被拒绝：缺少或无效的 CSRF 令牌（{message}）',
  'common.age.m': '{n} 分钟',
  'common.age.h': '{n} 小时',
  'common.age.d': '{n} 天',

  'status.AWAITING_PAYMENT': '待支付',
  'status.PAID': '已支付',
  'status.PARTIALLY_REFUNDED': '部分退款',
  'status.REFUNDED': '已全额退款',
  'status.CLOSED': '已关闭',
  'status.PRECREATE_FAILED': '下单失败',
  'status.FAILED': '支付失败',
  'status.REVIEW': '待复核',
  'refundStatus.PENDING': '退款中',
  'refundStatus.SUCCEEDED': '退款成功',
  'refundStatus.FAILED': '退款失败',
  'delivery.pending': '投递中',
  'delivery.delivered': '已送达',
  'delivery.failed': '投递失败',
  'delivery.no_endpoint': '无通知地址',
  'delivery.cancelled': '已取消',
  'method.qr': '扫码支付',
  'method.barcode': '付款码支付',

  'orders.title': '订单',
  'orders.outTradeNo': '商户订单号',
  'orders.status': '状态',
  'orders.amount': '金额',
  'orders.method': '支付方式',
  'orders.createdAt': '创建时间',
  'orders.paidAt': '支付时间',
  'orders.subject': '商品描述',
  'orders.alipayTradeNo': '支付宝交易号',
  'orders.dateRange': '创建日期',
  'orders.amountMin': '最小金额',
  'orders.amountMax': '最大金额',
  'orders.any': '全部',
  'orders.empty': '没有符合条件的订单',
  'orders.pageFilterNote': '金额与支付方式在每一页内筛选',
  'orders.invalidAmount': '请输入正确的金额，如 12.50',

  'order.title': '订单 {no}',
  'order.notFound': '订单不存在：{no}',
  'order.paidAmount': '实付金额',
  'order.refundedAmount': '已退款金额',
  'order.refundable': '可退款金额',
  'order.expiresAt': '失效时间',
  'order.updatedAt': '更新时间',
  'order.reason': '原因',
  'order.alipayStatus': '支付宝交易状态',
  'order.authCode': '付款码',
  'order.cashierUrl': '收银台链接',
  'order.refund': '退款',
  'order.cancel': '取消订单',
  'order.cancelConfirm': '确定取消这笔未支付的订单吗？',
  'order.cancelled': '订单已取消',
  'order.timeline': '事件时间线',
  'order.refunds': '退款记录',
  'order.webhooks': 'Webhook 投递',
  'order.noEvents': '暂无事件',
  'order.noRefunds': '暂无退款',

  'refund.title': '退款',
  'refund.outRequestNo': '退款单号',
  'refund.amount': '退款金额',
  'refund.reason': '退款原因',
  'refund.refundable': '可退款金额：{amount}',
  'refund.submit': '提交退款',
  'refund.sent': '退款已提交：{no}',
  'refund.invalidAmount': '退款金额须在 ¥0.01 到 {max} 之间',
  'refund.status': '状态',
  'refund.createdAt': '申请时间',
  'refund.settledAt': '完成时间',
  'refund.failureReason': '失败原因',
  'refund.repeatSafe': '重复提交是安全的：关闭对话框之前使用同一个退款单号',

  'webhook.type': '事件类型',
  'webhook.event': '事件',
  'webhook.status': '投递状态',
  'webhook.attempts': '尝试次数',
  'webhook.lastResult': '最近结果',
  'webhook.deliveredAt': '送达时间',
  'webhook.resend': '重新发送',
  'webhook.resent': '已安排重新发送',
  'webhook.endpoints': 'Webhook 端点',
  'webhook.url': '地址',
  'webhook.events': '订阅事件',
  'webhook.enabled': '启用',
  'webhook.description': '备注',
  'webhook.create': '新增端点',
  'webhook.created': '端点已创建。签名密钥只显示这一次：',
  'webhook.deliveries': '投递记录',
  'webhook.deliveriesOf': '端点 {id} 的投递记录',
  'webhook.test': '发送测试事件',
  'webhook.testSent': '测试事件已发送',
  'webhook.noEndpoints': '暂无端点',
  'webhook.allEvents': '全部事件',
  'webhook.result.delivered': '已送达',
  'webhook.result.timeout': '超时',
  'webhook.result.refused': '目标被拒绝',
  'webhook.result.unreachable': '无法连接',
  'webhook.result.http': 'HTTP {status}',

  'review.title': '待复核订单',
  'review.statusFilter': '订单状态',
  'review.merchant': '商户',
  'review.reason': '复核原因',
  'review.age': '已等待',
  'review.resolve': '处理',
  'review.resolveTitle': '处理订单 {no}',
  'review.outcome': '处理结果',
  'review.asPaid': '确认已支付 (PAID)',
  'review.asClosed': '关闭订单 (CLOSED)',
  'review.note': '说明',
  'review.noteRequired': '请填写处理说明',
  'review.resolved': '订单 {no} 已处理为 {status}',
  'review.empty': '没有待复核的订单',
  'review.timeline': '时间线',
  'review.workflowStatus': '工作流状态',

  'timeline.title': '订单时间线',
  'timeline.paymentId': '支付 ID',
  'timeline.open': '查看',
  'timeline.temporal': '在 Temporal UI 中查看历史',
  'timeline.trace': 'Trace ID',
  'timeline.history': '工作流历史',
  'timeline.historyGone': 'Temporal 已不保留该工作流的历史',
  'timeline.workflows': '工作流',
  'timeline.kind': '类型',
  'timeline.entries': '事件',
  'timeline.at': '时间',
  'timeline.source': '来源',
  'timeline.summary': '摘要',
  'timeline.source.ledger': '账本',
  'timeline.source.webhook': 'Webhook',
  'timeline.source.alipay': '支付宝',
  'timeline.source.reconciliation': '对账',

  'audit.title': '审计日志',
  'audit.at': '时间',
  'audit.actor': '操作人',
  'audit.action': '操作',
  'audit.target': '对象',
  'audit.status': '结果',
  'audit.address': '地址',
  'audit.requestId': '请求 ID',
  'audit.detail': '详情',
  'audit.empty': '暂无审计记录',

  'merchants.title': '商户',
  'merchants.id': '商户 ID',
  'merchants.name': '名称',
  'merchants.state': '状态',
  'merchants.active': '正常',
  'merchants.disabled': '已停用',
  'merchants.create': '新增商户',
  'merchants.created': '商户已创建',
  'merchants.disable': '停用',
  'merchants.enable': '启用',
  'merchants.disableConfirm': '停用后该商户的请求将被拒绝，确定停用吗？',
  'merchants.credentials': '凭据只显示这一次，请妥善保存：',
  'merchants.unavailable': '服务端尚未提供商户管理接口',
};

export type MessageKey = keyof typeof zh;

const en: Record<MessageKey, string> = {
  'app.title': 'durapay console',
  'app.language': 'Language',
  'app.logout': 'Log out',
  'app.role.operator': 'Operator',
  'app.role.merchant': 'Merchant {id}',

  'nav.orders': 'Orders',
  'nav.webhooks': 'Webhooks',
  'nav.review': 'Review queue',
  'nav.timeline': 'Order timeline',
  'nav.audit': 'Audit log',
  'nav.merchants': 'Merchants',

  'login.title': 'Log in to the durapay console',
  'login.email': 'Email',
  'login.password': 'Password',
  'login.submit': 'Log in',
  'login.expired': 'Session expired, please log in again',
  'login.required': 'Please log in',
  'login.failed': 'Wrong email or password',
  'login.tooMany': 'Too many login attempts, try again later',
  'login.loggedOut': 'Logged out',

  'common.search': 'Search',
  'common.reset': 'Reset',
  'common.refresh': 'Refresh',
  'common.actions': 'Actions',
  'common.cancel': 'Cancel',
  'common.confirm': 'OK',
  'common.close': 'Close',
  'common.loading': 'Loading…',
  'common.notFound': 'Not found',
  'common.none': 'None',
  'common.firstPage': 'First page',
  'common.prevPage': 'Previous',
  'common.nextPage': 'Next',
  'common.olderPage': 'Older',
  'common.yes': 'Yes',
  'common.no': 'No',
  'common.back': 'Back',
  'common.forbidden': 'You may not open this page',
  'common.error': 'Request failed: {message}',
  'common.csrf': 'Request refused: missing or invalid CSRF token ({message})',
  'common.age.m': '{n} min',
  'common.age.h': '{n} h',
  'common.age.d': '{n} d',

  'status.AWAITING_PAYMENT': 'Awaiting payment',
  'status.PAID': 'Paid',
  'status.PARTIALLY_REFUNDED': 'Partially refunded',
  'status.REFUNDED': 'Refunded',
  'status.CLOSED': 'Closed',
  'status.PRECREATE_FAILED': 'QR code not issued',
  'status.FAILED': 'Failed',
  'status.REVIEW': 'In review',
  'refundStatus.PENDING': 'Pending',
  'refundStatus.SUCCEEDED': 'Succeeded',
  'refundStatus.FAILED': 'Failed',
  'delivery.pending': 'Pending',
  'delivery.delivered': 'Delivered',
  'delivery.failed': 'Failed',
  'delivery.no_endpoint': 'No notify URL',
  'delivery.cancelled': 'Cancelled',
  'method.qr': 'QR code',
  'method.barcode': 'Payment code',

  'orders.title': 'Orders',
  'orders.outTradeNo': 'Order number',
  'orders.status': 'Status',
  'orders.amount': 'Amount',
  'orders.method': 'Method',
  'orders.createdAt': 'Created',
  'orders.paidAt': 'Paid',
  'orders.subject': 'Subject',
  'orders.alipayTradeNo': 'Alipay trade number',
  'orders.dateRange': 'Created between',
  'orders.amountMin': 'Min amount',
  'orders.amountMax': 'Max amount',
  'orders.any': 'Any',
  'orders.empty': 'No orders match',
  'orders.pageFilterNote': 'Amount and method filter each page',
  'orders.invalidAmount': 'Enter an amount such as 12.50',

  'order.title': 'Order {no}',
  'order.notFound': 'No such order: {no}',
  'order.paidAmount': 'Paid amount',
  'order.refundedAmount': 'Refunded',
  'order.refundable': 'Refundable',
  'order.expiresAt': 'Expires',
  'order.updatedAt': 'Updated',
  'order.reason': 'Reason',
  'order.alipayStatus': 'Alipay trade status',
  'order.authCode': 'Payment code',
  'order.cashierUrl': 'Cashier page',
  'order.refund': 'Refund',
  'order.cancel': 'Cancel order',
  'order.cancelConfirm': 'Cancel this unpaid order?',
  'order.cancelled': 'Order cancelled',
  'order.timeline': 'Timeline',
  'order.refunds': 'Refunds',
  'order.webhooks': 'Webhook deliveries',
  'order.noEvents': 'No events yet',
  'order.noRefunds': 'No refunds',

  'refund.title': 'Refund',
  'refund.outRequestNo': 'Refund number',
  'refund.amount': 'Refund amount',
  'refund.reason': 'Reason',
  'refund.refundable': 'Refundable: {amount}',
  'refund.submit': 'Refund',
  'refund.sent': 'Refund requested: {no}',
  'refund.invalidAmount': 'The refund must be from ¥0.01 to {max}',
  'refund.status': 'Status',
  'refund.createdAt': 'Requested',
  'refund.settledAt': 'Settled',
  'refund.failureReason': 'Failure reason',
  'refund.repeatSafe': 'Submitting again is safe: the same refund number is used until this dialog closes',

  'webhook.type': 'Event type',
  'webhook.event': 'Event',
  'webhook.status': 'Delivery',
  'webhook.attempts': 'Attempts',
  'webhook.lastResult': 'Last result',
  'webhook.deliveredAt': 'Delivered',
  'webhook.resend': 'Resend',
  'webhook.resent': 'Resend scheduled',
  'webhook.endpoints': 'Webhook endpoints',
  'webhook.url': 'URL',
  'webhook.events': 'Events',
  'webhook.enabled': 'Enabled',
  'webhook.description': 'Description',
  'webhook.create': 'Add endpoint',
  'webhook.created': 'Endpoint created. Its signing secret is shown this once:',
  'webhook.deliveries': 'Deliveries',
  'webhook.deliveriesOf': 'Deliveries of endpoint {id}',
  'webhook.test': 'Send test event',
  'webhook.testSent': 'Test event sent',
  'webhook.noEndpoints': 'No endpoints',
  'webhook.allEvents': 'Every event',
  'webhook.result.delivered': 'Delivered',
  'webhook.result.timeout': 'Timeout',
  'webhook.result.refused': 'Target refused',
  'webhook.result.unreachable': 'Unreachable',
  'webhook.result.http': 'HTTP {status}',

  'review.title': 'Review queue',
  'review.statusFilter': 'Order status',
  'review.merchant': 'Merchant',
  'review.reason': 'Reason',
  'review.age': 'Age',
  'review.resolve': 'Resolve',
  'review.resolveTitle': 'Resolve order {no}',
  'review.outcome': 'Outcome',
  'review.asPaid': 'Paid (PAID)',
  'review.asClosed': 'Closed (CLOSED)',
  'review.note': 'Note',
  'review.noteRequired': 'Say why',
  'review.resolved': 'Order {no} resolved as {status}',
  'review.empty': 'No orders in review',
  'review.timeline': 'Timeline',
  'review.workflowStatus': 'Workflow',

  'timeline.title': 'Order timeline',
  'timeline.paymentId': 'Payment id',
  'timeline.open': 'Open',
  'timeline.temporal': 'History in the Temporal UI',
  'timeline.trace': 'Trace id',
  'timeline.history': 'Workflow history',
  'timeline.historyGone': 'Temporal no longer has this workflow’s history',
  'timeline.workflows': 'Workflows',
  'timeline.kind': 'Kind',
  'timeline.entries': 'Entries',
  'timeline.at': 'At',
  'timeline.source': 'Source',
  'timeline.summary': 'Summary',
  'timeline.source.ledger': 'Ledger',
  'timeline.source.webhook': 'Webhook',
  'timeline.source.alipay': 'Alipay',
  'timeline.source.reconciliation': 'Reconciliation',

  'audit.title': 'Audit log',
  'audit.at': 'At',
  'audit.actor': 'Actor',
  'audit.action': 'Action',
  'audit.target': 'Target',
  'audit.status': 'Result',
  'audit.address': 'Address',
  'audit.requestId': 'Request id',
  'audit.detail': 'Detail',
  'audit.empty': 'No audit entries',

  'merchants.title': 'Merchants',
  'merchants.id': 'Merchant id',
  'merchants.name': 'Name',
  'merchants.state': 'State',
  'merchants.active': 'Active',
  'merchants.disabled': 'Disabled',
  'merchants.create': 'Add merchant',
  'merchants.created': 'Merchant created',
  'merchants.disable': 'Disable',
  'merchants.enable': 'Enable',
  'merchants.disableConfirm': 'A disabled merchant’s requests are refused. Disable it?',
  'merchants.credentials': 'The credentials are shown this once; keep them safe:',
  'merchants.unavailable': 'The server does not offer merchant management yet',
};

export const messages: Record<Lang, Record<MessageKey, string>> = { 'zh-CN': zh, en };

export type Translate = (key: MessageKey, vars?: Record<string, string | number>) => string;

interface I18n {
  lang: Lang;
  setLang: (lang: Lang) => void;
  t: Translate;
}

const I18nContext = createContext<I18n | undefined>(undefined);

export function initialLang(): Lang {
  try {
    return localStorage.getItem(LANG_KEY) === 'en' ? 'en' : 'zh-CN';
  } catch {
    return 'zh-CN';
  }
}

function applyLang(lang: Lang): void {
  document.documentElement.lang = lang;
  document.title = messages[lang]['app.title'];
  dayjs.locale(lang === 'en' ? 'en' : 'zh-cn');
}

export function I18nProvider({ children }: { children: ReactNode }) {
  const [lang, setLangState] = useState<Lang>(() => {
    const first = initialLang();
    applyLang(first);
    return first;
  });
  const setLang = useCallback((next: Lang) => {
    try {
      localStorage.setItem(LANG_KEY, next);
    } catch {
      // private mode: the choice lasts this page
    }
    applyLang(next);
    setLangState(next);
  }, []);
  const t = useCallback<Translate>(
    (key, vars) => {
      const text = messages[lang][key] ?? key;
      return vars ? text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in vars ? String(vars[name]) : whole)) : text;
    },
    [lang],
  );
  const value = useMemo(() => ({ lang, setLang, t }), [lang, setLang, t]);
  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}

export function useI18n(): I18n {
  const i18n = useContext(I18nContext);
  if (!i18n) throw new Error('useI18n outside I18nProvider');
  return i18n;
}
