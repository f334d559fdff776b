// Small pieces every page uses: status tags, an attempt's coarse result, error messages.
import { App as AntApp, Result, Tag } from 'antd';
import { useCallback } from 'react';
import { ApiError, type Attempt, type PaymentStatus } from './api';
import { useI18n, type MessageKey } from './i18n';

const STATUS_COLORS: Record<PaymentStatus, string> = {
  AWAITING_PAYMENT: 'processing',
  PAID: 'success',
  PARTIALLY_REFUNDED: 'gold',
  REFUNDED: 'purple',
  CLOSED: 'default',
  PRECREATE_FAILED: 'error',
  FAILED: 'error',
  REVIEW: 'warning',
};

export function StatusTag({ status }: { status: PaymentStatus }) {
  const { t } = useI18n();
  return (
    <Tag color={STATUS_COLORS[status] ?? 'default'} data-status={status}>
      {t(`status.${status}` as MessageKey)}
    </Tag>
  );
}

export function RefundStatusTag({ status }: { status: 'PENDING' | 'SUCCEEDED' | 'FAILED' }) {
  const { t } = useI18n();
  const color = status === 'SUCCEEDED' ? 'success' : status === 'FAILED' ? 'error' : 'processing';
  return (
    <Tag color={color} data-status={status}>
      {t(`refundStatus.${status}` as MessageKey)}
    </Tag>
  );
}

export function DeliveryTag({ status }: { status: string }) {
  const { t } = useI18n();
  const color = status === 'delivered' ? 'success' : status === 'failed' ? 'error' : status === 'pending' ? 'processing' : 'default';
  return (
    <Tag color={color} data-status={status}>
      {t(`delivery.${status}` as MessageKey)}
    </Tag>
  );
}

/** An attempt's coarse result (delivered, http 503, timeout, refused, unreachable) in words. */
export function useAttemptText() {
  const { t } = useI18n();
  return (attempt: Attempt | undefined) => {
    if (!attempt) return '—';
    const http = /^http (\d{3})$/.exec(attempt.result);
    if (http) return t('webhook.result.http', { status: http[1]! });
    const key = `webhook.result.${attempt.result}` as MessageKey;
    return ['delivered', 'timeout', 'refused', 'unreachable'].includes(attempt.result) ? t(key) : attempt.result;
  };
}

/** Shows a failed request as a message: a refused CSRF token says so; a 401 is the session's. */
export function useShowError() {
  const { t } = useI18n();
  const { message } = AntApp.useApp();
  return useCallback(
    (err: unknown) => {
      if (err instanceof ApiError) {
        if (err.status === 401) return; // the session's handler sends the user to the login page
        if (err.code === 'CSRF_TOKEN_INVALID') {
          void message.error({ content: t('common.csrf', { message: err.message }), key: 'csrf', className: 'csrf-error' });
          return;
        }
        void message.error(t('common.error', { message: `${err.code}: ${err.message}` }));
        return;
      }
      void message.error(t('common.error', { message: err instanceof Error ? err.message : String(err) }));
    },
    [message, t],
  );
}

export function Forbidden() {
  const { t } = useI18n();
  return <Result status="403" title="403" subTitle={t('common.forbidden')} />;
}
