// Merchant staff: one order: its amounts, status and Alipay trade number, the timeline of its
// events, its refunds and the deliveries of its webhooks; refund in part or in full, cancel while
// unpaid, resend an event. The page reads the order again every few seconds, so a refund settling
// or a webhook delivered shows without a reload.
import { Button, Card, Descriptions, Popconfirm, Result, Space, Table, Timeline, Typography, App as AntApp } from 'antd';
import { useCallback, useEffect, useState } from 'react';
import { Link, useParams } from 'react-router-dom';
import { api, ApiError, type OrderEvent, type Payment, type Refund } from '../api';
import { useI18n } from '../i18n';
import { formatFen, formatYuan, parseYuan } from '../money';
import { formatTime } from '../time';
import { DeliveryTag, RefundStatusTag, StatusTag, useAttemptText, useShowError } from '../ui';
import { RefundDialog } from './RefundDialog';

const REFRESH_MS = 2_000;

interface OrderData {
  payment: Payment;
  refunds: Refund[];
  events: OrderEvent[];
}

/** What may still be refunded: paid, less what was refunded and what refunds still hold. */
export function refundableFen(payment: Payment, refunds: Refund[]): number {
  const paid = parseYuan(payment.paidAmount) ?? parseYuan(payment.amount) ?? 0;
  const refunded = parseYuan(payment.refundedAmount) ?? 0;
  const pending = refunds.filter((r) => r.status === 'PENDING').reduce((sum, r) => sum + (parseYuan(r.amount) ?? 0), 0);
  return Math.max(0, paid - refunded - pending);
}

export function OrderPage() {
  const { outTradeNo = '' } = useParams();
  const { t } = useI18n();
  const showError = useShowError();
  const { message } = AntApp.useApp();
  const attemptText = useAttemptText();
  const [data, setData] = useState<OrderData | undefined>();
  const [notFound, setNotFound] = useState(false);
  const [refunding, setRefunding] = useState(false);
  const [busy, setBusy] = useState(false);
  const base = `/v1/payments/${encodeURIComponent(outTradeNo)}`;

  const load = useCallback(async () => {
    try {
      const [payment, refunds, events] = await Promise.all([
        api.get<Payment>(base),
        api.get<{ refunds: Refund[] }>(`${base}/refunds`),
        api.get<{ events: OrderEvent[] }>(`${base}/events`),
      ]);
      setData({ payment, refunds: refunds.refunds, events: events.events });
      setNotFound(false);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 400)) setNotFound(true);
      else showError(err);
    }
  }, [base, showError]);

  useEffect(() => {
    setData(undefined);
    setNotFound(false);
    void load();
    const timer = setInterval(() => void load(), REFRESH_MS);
    return () => clearInterval(timer);
  }, [load]);

  if (notFound) {
    return (
      <Result
        status="404"
        title="404"
        subTitle={<span data-testid="order-not-found">{t('order.notFound', { no: outTradeNo })}</span>}
        extra={<Link to="/orders">{t('common.back')}</Link>}
      />
    );
  }
  if (!data) return <Card loading />;
  const { payment, refunds, events } = data;
  const refundable = refundableFen(payment, refunds);
  const canRefund = ['PAID', 'PARTIALLY_REFUNDED'].includes(payment.status) && refundable > 0;

  async function cancel() {
    setBusy(true);
    try {
      await api.post(`${base}/cancel`);
      void message.success(t('order.cancelled'));
      await load();
    } catch (err) {
      showError(err);
    } finally {
      setBusy(false);
    }
  }

  async function resend(eventId: string) {
    try {
      await api.post(`/v1/events/${encodeURIComponent(eventId)}/resend`);
      void message.success(t('webhook.resent'));
      await load();
    } catch (err) {
      showError(err);
    }
  }

  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Space style={{ justifyContent: 'space-between', width: '100%' }} wrap>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('order.title', { no: payment.outTradeNo })} <StatusTag status={payment.status} />
        </Typography.Title>
        <Space>
          <Button onClick={() => void load()}>{t('common.refresh')}</Button>
          {canRefund && (
            <Button type="primary" onClick={() => setRefunding(true)}>
              {t('order.refund')}
            </Button>
          )}
          {payment.status === 'AWAITING_PAYMENT' && (
            <Popconfirm title={t('order.cancelConfirm')} onConfirm={() => void cancel()} okText={t('common.confirm')} cancelText={t('common.cancel')}>
              <Button danger loading={busy}>
                {t('order.cancel')}
              </Button>
            </Popconfirm>
          )}
        </Space>
      </Space>
      <Card>
        <div data-testid="order-details">
          <Descriptions column={{ xs: 1, md: 2, xl: 3 }} bordered size="small">
            <Descriptions.Item label={t('orders.outTradeNo')}>{payment.outTradeNo}</Descriptions.Item>
            <Descriptions.Item label={t('orders.status')}>
              <StatusTag status={payment.status} />
            </Descriptions.Item>
            <Descriptions.Item label={t('orders.amount')}>
              <span data-testid="order-amount">{formatYuan(payment.amount)}</span>
            </Descriptions.Item>
            <Descriptions.Item label={t('order.paidAmount')}>{formatYuan(payment.paidAmount)}</Descriptions.Item>
            <Descriptions.Item label={t('order.refundedAmount')}>
              <span data-testid="order-refunded">{formatYuan(payment.refundedAmount)}</span>
            </Descriptions.Item>
            <Descriptions.Item label={t('order.refundable')}>
              <span data-testid="order-refundable">{['PAID', 'PARTIALLY_REFUNDED', 'REFUNDED'].includes(payment.status) ? formatFen(refundable) : '—'}</span>
            </Descriptions.Item>
            <Descriptions.Item label={t('orders.subject')}>{payment.subject}</Descriptions.Item>
            <Descriptions.Item label={t('orders.method')}>{t(`method.${payment.method}`)}</Descriptions.Item>
            <Descriptions.Item label={t('orders.alipayTradeNo')}>
              <span data-testid="order-trade-no">{payment.alipayTradeNo ?? '—'}</span>
            </Descriptions.Item>
            <Descriptions.Item label={t('order.alipayStatus')}>{payment.alipayStatus ?? '—'}</Descriptions.Item>
            <Descriptions.Item label={t('orders.createdAt')}>{formatTime(payment.createdAt)}</Descriptions.Item>
            <Descriptions.Item label={t('orders.paidAt')}>{formatTime(payment.paidAt)}</Descriptions.Item>
            <Descriptions.Item label={t('order.expiresAt')}>{formatTime(payment.expiresAt)}</Descriptions.Item>
            <Descriptions.Item label={t('order.updatedAt')}>{formatTime(payment.updatedAt)}</Descriptions.Item>
            {payment.authCode && <Descriptions.Item label={t('order.authCode')}>{payment.authCode}</Descriptions.Item>}
            {payment.reason && <Descriptions.Item label={t('order.reason')}>{payment.reason}{payment.alipaySubCode ? ` (${payment.alipaySubCode})` : ''}</Descriptions.Item>}
          </Descriptions>
        </div>
      </Card>
      <Card title={t('order.timeline')} size="small">
        {events.length === 0 ? (
          <Typography.Text type="secondary">{t('order.noEvents')}</Typography.Text>
        ) : (
          <div data-testid="order-timeline">
            <Timeline
              items={[
                { color: 'gray', children: `${formatTime(payment.createdAt)}  ${t('orders.createdAt')}` },
                ...events.map((e) => ({
                  color: e.status === 'failed' ? 'red' : e.status === 'delivered' ? 'green' : 'blue',
                  children: (
                    <Space>
                      <span>{formatTime(e.created * 1000)}</span>
                      <Typography.Text code>{e.type}</Typography.Text>
                      <DeliveryTag status={e.status} />
                    </Space>
                  ),
                })),
              ]}
            />
          </div>
        )}
      </Card>
      <Card title={t('order.refunds')} size="small">
        <div data-testid="refunds-table">
          <Table<Refund>
            rowKey="outRequestNo"
            size="small"
            pagination={false}
            dataSource={refunds}
            locale={{ emptyText: t('order.noRefunds') }}
            columns={[
              { title: t('refund.outRequestNo'), dataIndex: 'outRequestNo' },
              { title: t('refund.amount'), dataIndex: 'amount', align: 'right', render: (a: string) => formatYuan(a) },
              { title: t('refund.status'), dataIndex: 'status', render: (s: Refund['status']) => <RefundStatusTag status={s} /> },
              { title: t('refund.reason'), dataIndex: 'reason', render: (v: string | null) => v ?? '—' },
              { title: t('refund.failureReason'), dataIndex: 'failureReason', render: (v: string | null) => v ?? '—' },
              { title: t('refund.createdAt'), dataIndex: 'createdAt', render: formatTime },
              { title: t('refund.settledAt'), dataIndex: 'settledAt', render: formatTime },
            ]}
          />
        </div>
      </Card>
      <Card title={t('order.webhooks')} size="small">
        <div data-testid="deliveries-table">
          <Table<OrderEvent>
            rowKey="id"
            size="small"
            pagination={false}
            dataSource={events}
            locale={{ emptyText: t('order.noEvents') }}
            columns={[
              { title: t('webhook.event'), dataIndex: 'id', render: (id: string) => <Typography.Text code>{id}</Typography.Text> },
              { title: t('webhook.type'), dataIndex: 'type' },
              { title: t('webhook.status'), dataIndex: 'status', render: (s: string) => <DeliveryTag status={s} /> },
              { title: t('webhook.attempts'), dataIndex: 'attempts', align: 'right', render: (a: OrderEvent['attempts']) => a.length },
              { title: t('webhook.lastResult'), key: 'last', render: (_: unknown, e) => attemptText(e.attempts.at(-1)) },
              { title: t('webhook.deliveredAt'), dataIndex: 'deliveredAt', render: formatTime },
              {
                title: t('common.actions'),
                key: 'actions',
                render: (_: unknown, e) =>
                  e.status === 'no_endpoint' ? null : (
                    <Button size="small" onClick={() => void resend(e.id)}>
                      {t('webhook.resend')}
                    </Button>
                  ),
              },
            ]}
          />
        </div>
      </Card>
      {refunding && (
        <RefundDialog
          outTradeNo={payment.outTradeNo}
          refundableFen={refundable}
          onClose={() => setRefunding(false)}
          onDone={() => void load()}
        />
      )}
    </Space>
  );
}
