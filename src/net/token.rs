//! One access-token cache for every OAuth-style client (Bitwarden, Graph, Google, Okta,
//! OneLogin): the token is reused until a margin before it expires, fetched by one caller at a
//! time, and dropped after a 401 ([`TokenCache::invalidate`]; [`super::HttpClient::send_authorised`]
//! renews it once per call). Every token fetched is remembered by the client's [`Scrubber`].

use std::future::Future;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::Scrubber;
use crate::Error;
use crate::secrets::SecretValue;

/// A token as the server issued it.
#[derive(Clone, Debug)]
pub struct Token {
    pub value: SecretValue,
    /// How long it is valid from the moment it was requested (`expires_in`).
    pub lifetime: Duration,
}

struct Cached {
    value: SecretValue,
    renew_at: Instant,
}

/// A cached access token. Share it (by reference) between the calls of one client.
pub struct TokenCache {
    margin: Duration,
    scrubber: Scrubber,
    cached: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// Tokens are renewed `margin` before they expire (a token whose lifetime is shorter is used
    /// for one call only). Each new token is added to `scrubber`.
    pub fn new(margin: Duration, scrubber: Scrubber) -> TokenCache {
        TokenCache {
            margin,
            scrubber,
            cached: Mutex::new(None),
        }
    }

    /// The cached token, or a new one from `fetch`. Concurrent callers wait for one fetch.
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<SecretValue, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Token, Error>>,
    {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.renew_at
        {
            return Ok(token.value.clone());
        }
        *cached = None;
        let requested_at = Instant::now();
        let token = fetch().await?;
        self.scrubber.remember(token.value.clone());
        *cached = Some(Cached {
            value: token.value.clone(),
            renew_at: requested_at + token.lifetime.saturating_sub(self.margin),
        });
        Ok(token.value)
    }

    /// Forgets `used` after the server refused it, unless another call already renewed it.
    pub async fn invalidate(&self, used: &SecretValue) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|t| &t.value == used) {
            *cached = None;
        }
    }

    /// Forgets the cached token: the next call fetches a new one.
    pub async fn clear(&self) {
        *self.cached.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn issuer(lifetime: Duration) -> (Arc<AtomicUsize>, impl Fn() -> std::future::Ready<Result<Token, Error>>) {
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let fetch = move || {
            let n = c.fetch_add(1, Ordering::SeqCst) + 1;
            std::future::ready(Ok(Token {
                value: SecretValue::new(format!("token-{n}")),
                lifetime,
            }))
        };
        (count, fetch)
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_reused_until_the_margin_before_expiry() {
        let scrubber = Scrubber::default();
        let cache = TokenCache::new(Duration::from_secs(300), scrubber.clone());
        let (count, fetch) = issuer(Duration::from_secs(3600));
        assert_eq!(cache.get(&fetch).await.unwrap().expose(), "token-1");
        tokio::time::advance(Duration::from_secs(3299)).await;
        assert_eq!(cache.get(&fetch).await.unwrap().expose(), "token-1");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            cache.get(&fetch).await.unwrap().expose(),
            "token-2",
            "renewed 5 min early"
        );
        assert_eq!(count.load(Ordering::SeqCst), 2);
        assert_eq!(scrubber.scrub("token-1 token-2"), "<redacted> <redacted>");

        // A lifetime shorter than the margin: never reused.
        let cache = TokenCache::new(Duration::from_secs(60), Scrubber::default());
        let (count, fetch) = issuer(Duration::from_secs(30));
        cache.get(&fetch).await.unwrap();
        cache.get(&fetch).await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn invalidate_forgets_only_the_refused_token() {
        let cache = TokenCache::new(Duration::from_secs(60), Scrubber::default());
        let (count, fetch) = issuer(Duration::from_secs(3600));
        let first = cache.get(&fetch).await.unwrap();
        cache.invalidate(&SecretValue::new("some older token")).await;
        assert_eq!(cache.get(&fetch).await.unwrap(), first);
        cache.invalidate(&first).await;
        assert_eq!(cache.get(&fetch).await.unwrap().expose(), "token-2");
        cache.clear().await;
        assert_eq!(cache.get(&fetch).await.unwrap().expose(), "token-3");
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch_and_failures_are_not_cached() {
        let cache = Arc::new(TokenCache::new(Duration::from_secs(60), Scrubber::default()));
        let count = Arc::new(AtomicUsize::new(0));
        let calls = (0..8).map(|_| {
            let cache = cache.clone();
            let count = count.clone();
            tokio::spawn(async move {
                cache
                    .get(|| async move {
                        count.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(Token {
                            value: SecretValue::new("shared"),
                            lifetime: Duration::from_secs(3600),
                        })
                    })
                    .await
            })
        });
        for call in calls.collect::<Vec<_>>() {
            assert_eq!(call.await.unwrap().unwrap().expose(), "shared");
        }
        assert_eq!(count.load(Ordering::SeqCst), 1);

        let cache = TokenCache::new(Duration::from_secs(60), Scrubber::default());
        let refused = cache
            .get(|| std::future::ready(Err(Error::SourceAuthFailed("no".into()))))
            .await;
        assert!(refused.is_err());
        let (count, fetch) = issuer(Duration::from_secs(3600));
        cache.get(&fetch).await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
}
