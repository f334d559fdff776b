// Merchant staff: their API credentials. Rotating the API secret makes a new one, shown this once
// (the server keeps it sealed and never shows it again), while the previous one keeps signing for
// the grace period chosen here, so the merchant's systems can change over without a gap.
import { Alert, Button, Card, Descriptions, Popconfirm, Radio, Space, Typography } from 'antd';
import { useState } from 'react';
import { api } from '../api';
import { useI18n, type MessageKey } from '../i18n';
import { useCurrentSession } from '../session';
import { formatTime } from '../time';
import { useShowError } from '../ui';

/** The grace periods offered, in seconds; a day is the server's default. */
export const GRACE_CHOICES = [0, 3_600, 86_400, 604_800] as const;
const DEFAULT_GRACE = 86_400;
const GRACE_LABELS: Record<(typeof GRACE_CHOICES)[number], MessageKey> = {
  0: 'credentials.grace.none',
  3_600: 'credentials.grace.hour',
  86_400: 'credentials.grace.day',
  604_800: 'credentials.grace.week',
};

interface Rotated {
  merchantId: string;
  secret: string;
  previousSecretValidUntil: string;
}

export function CredentialsPage() {
  const { t } = useI18n();
  const showError = useShowError();
  const session = useCurrentSession();
  const [grace, setGrace] = useState<number>(DEFAULT_GRACE);
  const [rotating, setRotating] = useState(false);
  const [rotated, setRotated] = useState<Rotated | undefined>();

  async function rotate() {
    setRotating(true);
    try {
      setRotated(await api.post<Rotated>('/v1/credentials/rotate-secret', { graceSeconds: grace }));
    } catch (err) {
      showError(err);
    } finally {
      setRotating(false);
    }
  }

  return (
    <Space direction="vertical" size="middle" style={{ width: '100%' }}>
      <Typography.Title level={3} style={{ margin: 0 }}>
        {t('credentials.title')}
      </Typography.Title>
      <Card size="small">
        <Descriptions column={1} size="small">
          <Descriptions.Item label={t('credentials.merchantId')}>
            <span data-testid="credentials-merchant-id">
              <Typography.Text code copyable>
                {session.user.merchantId}
              </Typography.Text>
            </span>
          </Descriptions.Item>
        </Descriptions>
      </Card>
      <Card size="small" title={t('credentials.rotateTitle')}>
        <Space direction="vertical" size="middle" style={{ width: '100%' }}>
          <Typography.Paragraph style={{ margin: 0 }}>{t('credentials.rotateHelp')}</Typography.Paragraph>
          <Space wrap>
            <Typography.Text>{t('credentials.grace')}</Typography.Text>
            <span data-testid="credentials-grace">
              <Radio.Group
                value={grace}
                onChange={(e) => setGrace(e.target.value as number)}
                optionType="button"
                options={GRACE_CHOICES.map((seconds) => ({ value: seconds, label: t(GRACE_LABELS[seconds]) }))}
              />
            </span>
          </Space>
          <Popconfirm
            title={t('credentials.confirmTitle')}
            description={grace === 0 ? t('credentials.confirmNow') : t('credentials.confirmGrace', { grace: t(GRACE_LABELS[grace as (typeof GRACE_CHOICES)[number]]) })}
            okText={t('common.confirm')}
            cancelText={t('common.cancel')}
            onConfirm={() => rotate()}
          >
            <Button type="primary" danger loading={rotating} data-testid="credentials-rotate">
              {t('credentials.rotate')}
            </Button>
          </Popconfirm>
        </Space>
      </Card>
      {rotated && (
        <Alert
          type="success"
          showIcon
          closable
          onClose={() => setRotated(undefined)}
          message={t('credentials.shownOnce')}
          description={
            <Space direction="vertical">
              <span>
                {t('credentials.newSecret')}{' '}
                <Typography.Text code copyable={{ text: rotated.secret }}>
                  <span data-testid="credentials-secret">{rotated.secret}</span>
                </Typography.Text>
              </span>
              <span data-testid="credentials-previous-until">
                {t('credentials.previousUntil', { time: formatTime(rotated.previousSecretValidUntil) })}
              </span>
            </Space>
          }
        />
      )}
    </Space>
  );
}
