// Who is logged in: read from GET /console/api/session when the app opens, set by the login, and
// dropped by a logout or by any 401 (the login page then says why).
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { ApiError, request, setCsrfToken, setUnauthorizedHandler, type Session } from './api';

export type SignedOutReason = 'expired' | 'required' | 'loggedOut';

export type SessionState =
  | { status: 'loading' }
  | { status: 'anonymous'; reason?: SignedOutReason }
  | { status: 'authenticated'; session: Session };

interface SessionApi {
  state: SessionState;
  login: (email: string, password: string) => Promise<Session>;
  logout: () => Promise<void>;
}

const SessionContext = createContext<SessionApi | undefined>(undefined);

export function isOperator(session: Session): boolean {
  return session.user.role === 'operator';
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<SessionState>({ status: 'loading' });

  const signedIn = useCallback((session: Session) => {
    setCsrfToken(session.csrfToken);
    setState({ status: 'authenticated', session });
  }, []);

  const signedOut = useCallback((reason?: SignedOutReason) => {
    setCsrfToken(undefined);
    setState({ status: 'anonymous', reason });
  }, []);

  useEffect(() => {
    // A 401 from any request after the login: the session is over, whatever its code says.
    setUnauthorizedHandler(() => signedOut('expired'));
    let live = true;
    request<Session>('GET', '/session', undefined, { quiet401: true })
      .then((session) => live && signedIn(session))
      .catch((err) => {
        if (!live) return;
        signedOut(err instanceof ApiError && err.code === 'SESSION_EXPIRED' ? 'expired' : undefined);
      });
    return () => {
      live = false;
      setUnauthorizedHandler(undefined);
    };
  }, [signedIn, signedOut]);

  const login = useCallback(
    async (email: string, password: string) => {
      const session = await request<Session>('POST', '/session', { email, password }, { quiet401: true });
      signedIn(session);
      return session;
    },
    [signedIn],
  );

  const logout = useCallback(async () => {
    try {
      await request('DELETE', '/session', undefined, { quiet401: true });
    } finally {
      signedOut('loggedOut');
    }
  }, [signedOut]);

  const value = useMemo(() => ({ state, login, logout }), [state, login, logout]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionApi {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside SessionProvider');
  return session;
}

/** The logged-in session (only under the app's authenticated routes). */
export function useCurrentSession(): Session {
  const { state } = useSession();
  if (state.status !== 'authenticated') throw new Error('no session');
  return state.session;
}
