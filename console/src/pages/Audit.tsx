// Operators: the audit log, newest first, 50 at a time (older pages follow nextBefore).
import { Button, Space, Table, Tag, Typography } from 'antd';
import { useCallback, useEffect, useState } from 'react';
import { api, query, type AuditEntry } from '../api';
import { useI18n } from '../i18n';
import { formatTime } from '../time';
import { useShowError } from '../ui';

const wrap = { wordBreak: 'break-all' } as const;

/** A target's parameters ({"paymentId": "…"}) or a request's body, as one line. */
function jsonText(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && Object.keys(value).length === 0) return '—';
  if (typeof value === 'object' && !Array.isArray(value) && Object.values(value).every((v) => typeof v !== 'object')) {
    return Object.entries(value).map(([k, v]) => `${k}: ${String(v)}`).join(', ');
  }
  return JSON.stringify(value);
}

export function AuditPage() {
  const { t } = useI18n();
  const showError = useShowError();
  const [befores, setBefores] = useState<(string | undefined)[]>([undefined]);
  const [entries, setEntries] = useState<AuditEntry[] | undefined>();
  const [nextBefore, setNextBefore] = useState<string | null>(null);
  const before = befores[befores.length - 1];

  const load = useCallback(async () => {
    try {
      const answer = await api.get<{ data: AuditEntry[]; nextBefore: string | number | null }>(`/ops/audit${query({ limit: 50, before })}`);
      setEntries(answer.data);
      setNextBefore(answer.nextBefore === null || answer.nextBefore === undefined ? null : String(answer.nextBefore));
    } catch (err) {
      showError(err);
    }
  }, [before, showError]);
  useEffect(() => {
    setEntries(undefined);
    void load();
  }, [load]);

  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Space style={{ justifyContent: 'space-between', width: '100%' }}>
        <Typography.Title level={3} style={{ margin: 0 }}>
          {t('audit.title')}
        </Typography.Title>
        <Button onClick={() => void load()}>{t('common.refresh')}</Button>
      </Space>
      <div data-testid="audit-table">
        <Table<AuditEntry>
          rowKey={(e) => String(e.id)}
          size="small"
          loading={!entries}
          dataSource={entries ?? []}
          pagination={false}
          locale={{ emptyText: t('audit.empty') }}
          tableLayout="fixed"
          columns={[
            { title: t('audit.at'), dataIndex: 'at', width: 160, render: formatTime },
            {
              title: t('audit.actor'),
              dataIndex: 'actor',
                            render: (a: AuditEntry['actor']) => (a?.email ? <span style={wrap}>{`${a.email} (${a.role ?? '—'})`}</span> : '—'),
            },
            { title: t('audit.action'), dataIndex: 'action', render: (v: string) => <Typography.Text code style={wrap}>{v}</Typography.Text> },
            { title: t('audit.target'), dataIndex: 'target', render: (v: unknown) => <span style={wrap}>{jsonText(v)}</span> },
            { title: t('audit.status'), dataIndex: 'status', width: 64, render: (v: unknown) => (v === null || v === undefined ? '—' : String(v)) },
            { title: t('audit.address'), dataIndex: 'address', width: 100, render: (v: string | null) => v ?? '—' },
            { title: t('audit.requestId'), dataIndex: 'requestId', width: 130, ellipsis: true, render: (v: string | null) => v ?? '—' },
            {
              title: t('audit.detail'),
              dataIndex: 'detail',
              render: (d: unknown) =>
                d === null || d === undefined ? '—' : (
                  <Typography.Text style={{ ...wrap, fontSize: 12 }}>{jsonText(d)}</Typography.Text>
                ),
            },
          ]}
        />
      </div>
      <Space>
        <Button disabled={befores.length <= 1} onClick={() => setBefores([undefined])}>
          {t('common.firstPage')}
        </Button>
        <Button disabled={!nextBefore} onClick={() => nextBefore && setBefores((b) => [...b, nextBefore])}>
          {t('common.olderPage')}
        </Button>
      </Space>
    </Space>
  );
}
