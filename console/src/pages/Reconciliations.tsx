// Operators: one day's reconciliation with Alipay's trade bill (GET /ops/reconciliations/:date):
// its status (and why, when it did not end DONE), the bill's and durapay's totals, the mismatches
// with a link to each order's timeline; a day never reconciled says so. "Rerun" starts the day
// again (POST /ops/reconciliations with rerun: true) and follows it until it is no longer RUNNING.
import { Alert, Button, Card, DatePicker, Descriptions, Input, Popconfirm, Result, Space, Spin, Table, Tag, Typography } from 'antd';
import dayjs, { type Dayjs } from 'dayjs';
import { useCallback, useEffect, useRef, useState } from 'react';
import { Link, useSearchParams } from 'react-router-dom';
import { api, ApiError, query } from '../api';
import { useI18n, type MessageKey } from '../i18n';
import { formatYuan } from '../money';
import { formatTime } from '../time';
import { useShowError } from '../ui';

export type ReconciliationStatus = 'RUNNING' | 'DONE' | 'BILL_NOT_READY' | 'FAILED';
export type MismatchType = 'missing_local' | 'missing_gateway' | 'amount_mismatch' | 'status_mismatch' | 'refund_mismatch';

interface ReconciliationTotal {
  count: number;
  amount: string;
}

interface ReconciliationSides {
  gateway: ReconciliationTotal;
  local: ReconciliationTotal;
}

export interface Mismatch {
  type: MismatchType;
  merchantId: string | null;
  outTradeNo: string | null;
  alipayOutTradeNo: string;
  alipayTradeNo: string | null;
  localAmount: string | null;
  gatewayAmount: string | null;
  detail: string;
  outRequestNo: string | null;
}

export interface Reconciliation {
  date: string;
  status: ReconciliationStatus;
  reason: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  totals: { payments: ReconciliationSides; refunds: ReconciliationSides } | null;
  mismatchCount: number;
  mismatches: Mismatch[];
}

const STATUS_COLORS: Record<ReconciliationStatus, string> = { RUNNING: 'processing', DONE: 'success', BILL_NOT_READY: 'warning', FAILED: 'error' };
const TYPE_COLORS: Record<MismatchType, string> = {
  missing_local: 'orange',
  missing_gateway: 'red',
  amount_mismatch: 'red',
  status_mismatch: 'gold',
  refund_mismatch: 'gold',
};
/** How often a running day is asked again. */
const POLL_MS = 1_500;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const APP_ID = /^\d{6,32}$/;

/** The Beijing calendar day (UTC+8 all year) `daysAgo` days before now, YYYY-MM-DD. */
export function beijingDay(daysAgo = 0, now = Date.now()): string {
  return new Date(now + 8 * 3_600_000 - daysAgo * 86_400_000).toISOString().slice(0, 10);
}

type Loaded = { kind: 'day'; day: Reconciliation } | { kind: 'none' } | { kind: 'noApp' } | { kind: 'loading' };

export function ReconciliationsPage() {
  const { t } = useI18n();
  const showError = useShowError();
  const [params, setParams] = useSearchParams();
  const date = DAY.test(params.get('date') ?? '') ? params.get('date')! : beijingDay(1);
  const appId = APP_ID.test(params.get('appId') ?? '') ? params.get('appId')! : '';
  const [appInput, setAppInput] = useState(appId);
  const [loaded, setLoaded] = useState<Loaded>({ kind: 'loading' });
  /** Set while a rerun started here is followed: when it was asked for. */
  const [following, setFollowing] = useState<number | undefined>();
  const [now, setNow] = useState(Date.now());
  const [rerunning, setRerunning] = useState(false);
  /** One more each time a poll has been answered (or failed), so the next one is scheduled. */
  const [polls, setPolls] = useState(0);
  /** The date and app of the answer wanted now: a late answer for another day is dropped. */
  const wanted = useRef(`${date}|${appId}`);
  wanted.current = `${date}|${appId}`;
  // The language's error messages without asking again when the language changes.
  const showErrorRef = useRef(showError);
  showErrorRef.current = showError;

  const path = `/ops/reconciliations/${date}${query({ appId })}`;
  const load = useCallback(async () => {
    const asked = `${date}|${appId}`;
    try {
      const day = await api.get<Reconciliation>(path);
      if (wanted.current === asked) setLoaded({ kind: 'day', day });
    } catch (err) {
      if (wanted.current !== asked) return;
      if (err instanceof ApiError && err.status === 404) setLoaded({ kind: /Alipay app/.test(err.message) ? 'noApp' : 'none' });
      else showErrorRef.current(err);
    }
  }, [date, appId, path]);

  useEffect(() => {
    setLoaded({ kind: 'loading' });
    setFollowing(undefined);
    void load();
  }, [load]);
  useEffect(() => setAppInput(appId), [appId]);

  // While the day runs (or a rerun asked for here has not shown up yet), ask again.
  const running = loaded.kind === 'day' && loaded.day.status === 'RUNNING';
  const waiting = following !== undefined && (running || loaded.kind === 'none');
  useEffect(() => {
    if (!running && !waiting) {
      setFollowing(undefined);
      return;
    }
    const timer = setTimeout(() => void load().finally(() => setPolls((n) => n + 1)), POLL_MS);
    return () => clearTimeout(timer);
  }, [running, waiting, polls, load]);
  useEffect(() => {
    if (!running && !waiting) return;
    const ticker = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(ticker);
  }, [running, waiting]);

  const rerun = async () => {
    setRerunning(true);
    try {
      const day = await api.post<Reconciliation>('/ops/reconciliations', { date, rerun: true, ...(appId ? { appId } : {}) });
      setFollowing(Date.now());
      setNow(Date.now());
      setLoaded({ kind: 'day', day });
    } catch (err) {
      showError(err);
      // A run of the day going on already: follow that one.
      if (err instanceof ApiError && err.code === 'RECONCILIATION_RUNNING') {
        setFollowing(Date.now());
        void load();
      }
    } finally {
      setRerunning(false);
    }
  };

  const choose = (next: { date?: string; appId?: string }) => {
    const chosen = { date: next.date ?? date, appId: next.appId ?? appId };
    setParams(chosen.appId ? { date: chosen.date, appId: chosen.appId } : { date: chosen.date });
  };
  const appValid = appInput === '' || APP_ID.test(appInput);
  const day = loaded.kind === 'day' ? loaded.day : undefined;
  const since = following ?? (day?.startedAt ? Date.parse(day.startedAt) : now);

  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Space style={{ justifyContent: 'space-between', width: '100%' }} wrap>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('recon.title')}
        </Typography.Title>
        <Space wrap>
          <span>{t('recon.date')}</span>
          <span data-testid="recon-date">
            <DatePicker
              value={dayjs(date)}
              allowClear={false}
              format="YYYY-MM-DD"
              disabledDate={(d: Dayjs) => d.format('YYYY-MM-DD') > beijingDay(0)}
              onChange={(d: Dayjs | null) => d && choose({ date: d.format('YYYY-MM-DD') })}
            />
          </span>
          <span>{t('recon.app')}</span>
          <Input
            value={appInput}
            placeholder={t('recon.appDefault')}
            status={appValid ? undefined : 'error'}
            style={{ width: 220 }}
            data-testid="recon-app"
            allowClear
            onChange={(e) => setAppInput(e.target.value.trim())}
            onPressEnter={() => appValid && choose({ appId: appInput })}
          />
          <Button type="primary" disabled={!appValid} onClick={() => (appInput !== appId ? choose({ appId: appInput }) : void load())} data-testid="recon-show">
            {t('recon.show')}
          </Button>
          <Popconfirm
            title={t('recon.rerunTitle', { date })}
            description={t('recon.rerunHelp')}
            okText={t('recon.rerun')}
            cancelText={t('common.cancel')}
            onConfirm={() => void rerun()}
            disabled={running || rerunning}
          >
            <Button danger loading={rerunning} disabled={running} data-testid="recon-rerun">
              {loaded.kind === 'none' ? t('recon.start') : t('recon.rerun')}
            </Button>
          </Popconfirm>
        </Space>
      </Space>
      {!appValid && <Alert type="error" showIcon message={t('recon.appInvalid')} />}
      {(running || waiting) && (
        <Alert
          type="info"
          data-testid="recon-progress"
          icon={<Spin size="small" />}
          showIcon
          message={t('recon.running')}
          description={t('recon.runningHelp', { seconds: Math.max(0, Math.round((now - since) / 1000)) })}
        />
      )}
      {loaded.kind === 'loading' && <Card loading />}
      {loaded.kind === 'none' && !waiting && (
        <div data-testid="recon-none">
          <Result status="info" title={t('recon.none', { date })} subTitle={t('recon.noneHelp')} />
        </div>
      )}
      {loaded.kind === 'noApp' && <Result status="404" title="404" subTitle={t('recon.noApp', { appId })} />}
      {day && <DayView day={day} appId={appId} />}
    </Space>
  );
}

function DayView({ day, appId }: { day: Reconciliation; appId: string }) {
  const { t } = useI18n();
  const totals = day.totals
    ? [
        { key: 'payments', label: t('recon.payments'), ...day.totals.payments },
        { key: 'refunds', label: t('recon.refunds'), ...day.totals.refunds },
      ]
    : [];
  const agree = (s: ReconciliationSides) => s.gateway.count === s.local.count && s.gateway.amount === s.local.amount;
  return (
    <>
      <Card size="small" title={t('recon.day', { date: day.date })}>
        <Descriptions column={{ xs: 1, md: 2 }} size="small" bordered>
          <Descriptions.Item label={t('recon.status')}>
            <Tag color={STATUS_COLORS[day.status]} data-testid="recon-status" data-status={day.status}>
              {t(`recon.status.${day.status}` as MessageKey)}
            </Tag>
          </Descriptions.Item>
          <Descriptions.Item label={t('recon.mismatchCount')}>
            <span data-testid="recon-mismatch-count">{day.status === 'DONE' ? day.mismatchCount : '—'}</span>
          </Descriptions.Item>
          <Descriptions.Item label={t('recon.startedAt')}>
            <span data-testid="recon-started" data-at={day.startedAt ?? ''}>
              {formatTime(day.startedAt)}
            </span>
          </Descriptions.Item>
          <Descriptions.Item label={t('recon.finishedAt')}>{formatTime(day.finishedAt)}</Descriptions.Item>
        </Descriptions>
        {(day.status === 'FAILED' || day.status === 'BILL_NOT_READY') && (
          <Alert
            style={{ marginTop: 12 }}
            type={day.status === 'FAILED' ? 'error' : 'warning'}
            showIcon
            data-testid="recon-reason"
            message={t(`recon.why.${day.status}` as MessageKey)}
            description={day.reason ?? '—'}
          />
        )}
      </Card>
      {day.totals && (
        <Card size="small" title={t('recon.totals')}>
          <div data-testid="recon-totals">
            <Table
              rowKey="key"
              size="small"
              pagination={false}
              dataSource={totals}
              columns={[
                { title: '', dataIndex: 'label', width: 120 },
                { title: t('recon.billCount'), key: 'gc', align: 'right', render: (_: unknown, r) => r.gateway.count },
                { title: t('recon.billAmount'), key: 'ga', align: 'right', render: (_: unknown, r) => formatYuan(r.gateway.amount) },
                { title: t('recon.localCount'), key: 'lc', align: 'right', render: (_: unknown, r) => r.local.count },
                { title: t('recon.localAmount'), key: 'la', align: 'right', render: (_: unknown, r) => formatYuan(r.local.amount) },
                {
                  title: t('recon.agree'),
                  key: 'agree',
                  render: (_: unknown, r) => (agree(r) ? <Tag color="success">{t('common.yes')}</Tag> : <Tag color="error">{t('common.no')}</Tag>),
                },
              ]}
            />
          </div>
        </Card>
      )}
      {day.status === 'DONE' && (
        <Card size="small" title={t('recon.mismatches', { n: day.mismatchCount })}>
          {day.mismatchCount > day.mismatches.length && (
            <Alert style={{ marginBottom: 12 }} type="warning" showIcon message={t('recon.more', { shown: day.mismatches.length, n: day.mismatchCount })} />
          )}
          <div data-testid="recon-mismatches">
            <Table<Mismatch>
              rowKey={(m) => `${m.type}|${m.alipayOutTradeNo}|${m.outRequestNo ?? ''}`}
              size="small"
              pagination={{ pageSize: 50, hideOnSinglePage: true }}
              dataSource={day.mismatches}
              locale={{ emptyText: t('recon.noMismatches') }}
              columns={[
                {
                  title: t('recon.order'),
                  key: 'order',
                  render: (_: unknown, m) => <OrderCell mismatch={m} appId={appId} />,
                },
                { title: t('review.merchant'), dataIndex: 'merchantId', render: (v: string | null) => v ?? '—' },
                {
                  title: t('recon.type'),
                  dataIndex: 'type',
                  render: (type: MismatchType) => (
                    <Tag color={TYPE_COLORS[type] ?? 'default'} data-type={type}>
                      {t(`recon.type.${type}` as MessageKey)}
                    </Tag>
                  ),
                },
                { title: t('recon.local'), dataIndex: 'localAmount', align: 'right', render: (a: string | null) => formatYuan(a) },
                { title: t('recon.bill'), dataIndex: 'gatewayAmount', align: 'right', render: (a: string | null) => formatYuan(a) },
                { title: t('recon.refundNo'), dataIndex: 'outRequestNo', render: (v: string | null) => v ?? '—' },
                { title: t('recon.detail'), dataIndex: 'detail' },
              ]}
            />
          </div>
        </Card>
      )}
    </>
  );
}

/** The merchant's order number (Alipay's under it), linked to the order's timeline when the app is known. */
function OrderCell({ mismatch, appId }: { mismatch: Mismatch; appId: string }) {
  const { t } = useI18n();
  const label = mismatch.outTradeNo ?? mismatch.alipayOutTradeNo;
  const paymentId = appId ? `payment:${appId}:${mismatch.alipayOutTradeNo}` : undefined;
  return (
    <Space direction="vertical" size={0}>
      {paymentId ? (
        <Link to={`/ops/timeline/${encodeURIComponent(paymentId)}`} data-testid="recon-timeline-link">
          {label}
        </Link>
      ) : (
        <Typography.Text title={t('recon.appForLink')}>{label}</Typography.Text>
      )}
      {mismatch.outTradeNo && (
        <Typography.Text type="secondary" style={{ fontSize: 12 }}>
          {mismatch.alipayOutTradeNo}
        </Typography.Text>
      )}
    </Space>
  );
}
