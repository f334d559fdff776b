// Operators: the orders in REVIEW (or another status), oldest first, with why and for how long;
// resolve one as PAID or CLOSED with a note, or open its timeline.
import { App as AntApp, Button, Form, Input, Modal, Radio, Select, Space, Table, Typography } from 'antd';
import { useCallback, useEffect, useState } from 'react';
import { Link, useSearchParams } from 'react-router-dom';
import { api, PAYMENT_STATUSES, query, type OpsOrder, type Payment, type PaymentStatus } from '../api';
import { useI18n, type MessageKey } from '../i18n';
import { formatYuan } from '../money';
import { ageOf, formatTime } from '../time';
import { StatusTag, useShowError } from '../ui';

export function ReviewPage() {
  const { t } = useI18n();
  const showError = useShowError();
  const [params, setParams] = useSearchParams();
  const status = (PAYMENT_STATUSES.includes(params.get('status') as PaymentStatus) ? params.get('status') : 'REVIEW') as PaymentStatus;
  const [orders, setOrders] = useState<OpsOrder[] | undefined>();
  const [resolving, setResolving] = useState<OpsOrder | undefined>();

  const load = useCallback(async () => {
    try {
      setOrders((await api.get<{ orders: OpsOrder[] }>(`/ops/payments${query({ status, limit: 200 })}`)).orders);
    } catch (err) {
      showError(err);
    }
  }, [status, showError]);
  useEffect(() => {
    setOrders(undefined);
    void load();
  }, [load]);

  const age = (iso: string) => {
    const { unit, n } = ageOf(iso);
    return t(`common.age.${unit}` as MessageKey, { n });
  };

  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Space style={{ justifyContent: 'space-between', width: '100%' }} wrap>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('review.title')}
        </Typography.Title>
        <Space>
          <span>{t('review.statusFilter')}</span>
          <Select<PaymentStatus>
            value={status}
            style={{ width: 160 }}
            onChange={(s) => setParams(s === 'REVIEW' ? {} : { status: s })}
            options={PAYMENT_STATUSES.map((s) => ({ value: s, label: t(`status.${s}` as MessageKey) }))}
          />
          <Button onClick={() => void load()}>{t('common.refresh')}</Button>
        </Space>
      </Space>
      <div data-testid="review-table">
        <Table<OpsOrder>
          rowKey="paymentId"
          loading={!orders}
          dataSource={orders ?? []}
          pagination={{ pageSize: 50, hideOnSinglePage: true }}
          locale={{ emptyText: t('review.empty') }}
          columns={[
            { title: t('orders.outTradeNo'), dataIndex: 'outTradeNo', render: (v: string | null) => v ?? '—' },
            { title: t('review.merchant'), dataIndex: 'merchantId', render: (v: string | null) => v ?? '—' },
            { title: t('orders.amount'), dataIndex: 'amount', align: 'right', render: (a: string | null) => formatYuan(a) },
            { title: t('orders.status'), dataIndex: 'status', render: (s: PaymentStatus) => <StatusTag status={s} /> },
            { title: t('review.reason'), dataIndex: 'reason', render: (v: string | null) => v ?? '—' },
            { title: t('review.age'), dataIndex: 'startedAt', render: (at: string) => <span title={formatTime(at)}>{age(at)}</span> },
            { title: t('orders.alipayTradeNo'), dataIndex: 'alipayTradeNo', render: (v: string | null) => v ?? '—' },
            { title: t('review.workflowStatus'), dataIndex: 'workflowStatus', render: (v: string | null) => v ?? '—' },
            {
              title: t('common.actions'),
              key: 'actions',
              render: (_: unknown, o) => (
                <Space>
                  {o.status === 'REVIEW' && (
                    <Button size="small" type="primary" onClick={() => setResolving(o)}>
                      {t('review.resolve')}
                    </Button>
                  )}
                  <Link to={`/ops/timeline/${encodeURIComponent(o.paymentId)}`}>{t('review.timeline')}</Link>
                </Space>
              ),
            },
          ]}
        />
      </div>
      {resolving && <ResolveDialog order={resolving} onClose={() => setResolving(undefined)} onDone={() => void load()} />}
    </Space>
  );
}

function ResolveDialog({ order, onClose, onDone }: { order: OpsOrder; onClose: () => void; onDone: () => void }) {
  const { t } = useI18n();
  const { message } = AntApp.useApp();
  const showError = useShowError();
  const [busy, setBusy] = useState(false);
  const [form] = Form.useForm<{ outcome: 'PAID' | 'CLOSED'; note: string }>();

  async function submit() {
    const values = await form.validateFields();
    setBusy(true);
    try {
      const resolved = await api.post<Payment>(`/ops/payments/${encodeURIComponent(order.paymentId)}/resolve-review`, {
        outcome: values.outcome,
        note: values.note.trim(),
      });
      void message.success(t('review.resolved', { no: order.outTradeNo ?? order.paymentId, status: t(`status.${resolved.status}` as MessageKey) }));
      onDone();
      onClose();
    } catch (err) {
      showError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Modal
      open
      title={t('review.resolveTitle', { no: order.outTradeNo ?? order.paymentId })}
      okText={t('review.resolve')}
      cancelText={t('common.cancel')}
      confirmLoading={busy}
      onOk={() => void submit()}
      onCancel={onClose}
      data-testid="resolve-dialog"
    >
      <Typography.Paragraph type="secondary">{order.reason}</Typography.Paragraph>
      <Form form={form} layout="vertical" initialValues={{ outcome: 'PAID' }}>
        <Form.Item name="outcome" label={t('review.outcome')} rules={[{ required: true }]}>
          <Radio.Group>
            <Radio value="PAID">{t('review.asPaid')}</Radio>
            <Radio value="CLOSED">{t('review.asClosed')}</Radio>
          </Radio.Group>
        </Form.Item>
        <Form.Item
          name="note"
          label={t('review.note')}
          rules={[{ required: true, whitespace: true, message: t('review.noteRequired') }, { max: 1000 }]}
        >
          <Input.TextArea rows={3} maxLength={1000} data-testid="resolve-note" />
        </Form.Item>
      </Form>
    </Modal>
  );
}
