// A refund, in part or in full. The dialog makes its refund number once, when it opens, and sends
// that same number however often it is submitted until it closes: a repeat (a double click, a
// retry after a network error) is the same refund, which the API answers from its record.
import { Alert, App as AntApp, Form, Input, Modal, Typography } from 'antd';
import { useState } from 'react';
import { api, type Refund } from '../api';
import { useI18n } from '../i18n';
import { formatFen, parseTypedYuan, toYuan } from '../money';
import { useShowError } from '../ui';

export function newRefundNumber(now = new Date()): string {
  const stamp = now.toISOString().replace(/\D/g, '').slice(0, 14);
  const random = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16).padStart(2, '0')).join('');
  return `rf-${stamp}-${random}`;
}

export function RefundDialog({ outTradeNo, refundableFen, onClose, onDone }: { outTradeNo: string; refundableFen: number; onClose: () => void; onDone: () => void }) {
  const { t } = useI18n();
  const { message } = AntApp.useApp();
  const showError = useShowError();
  const [outRequestNo] = useState(newRefundNumber);
  const [busy, setBusy] = useState(false);
  const [form] = Form.useForm<{ amount: string; reason?: string }>();

  async function submit() {
    const values = await form.validateFields();
    const fen = parseTypedYuan(values.amount)!;
    setBusy(true);
    try {
      const refund = await api.post<Refund>(`/v1/payments/${encodeURIComponent(outTradeNo)}/refunds`, {
        outRequestNo,
        amount: toYuan(fen),
        ...(values.reason?.trim() ? { reason: values.reason.trim() } : {}),
      });
      void message.success(t('refund.sent', { no: refund.outRequestNo }));
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
      title={t('refund.title')}
      okText={t('refund.submit')}
      cancelText={t('common.cancel')}
      confirmLoading={busy}
      onOk={() => void submit()}
      onCancel={onClose}
      data-testid="refund-dialog"
    >
      <Form form={form} layout="vertical" initialValues={{ amount: toYuan(refundableFen) }}>
        <Alert type="info" showIcon style={{ marginBottom: 16 }} message={<span data-testid="refundable">{t('refund.refundable', { amount: formatFen(refundableFen) })}</span>} />
        <Form.Item label={t('refund.outRequestNo')}>
          <Typography.Text code data-testid="refund-no">
            {outRequestNo}
          </Typography.Text>
        </Form.Item>
        <Form.Item
          name="amount"
          label={t('refund.amount')}
          rules={[
            {
              validator: (_, value?: string) => {
                const fen = value ? parseTypedYuan(value) : undefined;
                return fen !== undefined && fen >= 1 && fen <= refundableFen
                  ? Promise.resolve()
                  : Promise.reject(new Error(t('refund.invalidAmount', { max: formatFen(refundableFen) })));
              },
            },
          ]}
        >
          <Input prefix="¥" data-testid="refund-amount" />
        </Form.Item>
        <Form.Item name="reason" label={t('refund.reason')} rules={[{ max: 256 }]}>
          <Input.TextArea rows={2} maxLength={256} />
        </Form.Item>
        <Typography.Text type="secondary">{t('refund.repeatSafe')}</Typography.Text>
      </Form>
    </Modal>
  );
}
