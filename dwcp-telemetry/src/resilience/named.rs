//! Named breakers: one shared [`CircuitBreaker`] per (registry, circuit), what
//! `#[instrument_dwcp(circuit = "...")]` binds to.
//!
//! A process-wide table, keyed by the registry's identity (held weakly: an entry goes when
//! its registry is dropped, swept on the next insertion). Looked up once per call site (or
//! per explicit call), never on a breaker's call path.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::breaker::CircuitBreaker;
use super::config::{BreakerConfig, ConfigurationError};
use crate::registry::RegistryId;
use crate::Registry;

type Table = Vec<(RegistryId, HashMap<String, CircuitBreaker>)>;

static NAMED: Mutex<Table> = Mutex::new(Vec::new());

fn table() -> MutexGuard<'static, Table> {
    // A panic while holding the lock cannot leave the table half-updated (each update is
    // one insertion), so a poisoned lock is still usable.
    NAMED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The breakers of `registry`, the table swept of dead registries when one is added.
fn breakers_of<'t>(
    table: &'t mut Table,
    registry: &Registry,
) -> &'t mut HashMap<String, CircuitBreaker> {
    let at = match table.iter().position(|(id, _)| id.is(registry)) {
        Some(i) => i,
        None => {
            table.retain(|(id, _)| id.alive());
            table.push((registry.id(), HashMap::new()));
            table.len() - 1
        }
    };
    &mut table[at].1
}

impl CircuitBreaker {
    /// The one shared breaker named `circuit` on `registry`, created with
    /// [`BreakerConfig::default()`] on first use unless [`CircuitBreaker::configure_named`]
    /// set it up before. Every call with the same registry and name returns a clone of the
    /// same breaker; `#[instrument_dwcp(circuit = "...")]` uses it.
    ///
    /// A breaker made with [`CircuitBreaker::new`] is not in this table: do not give it the
    /// name of a named breaker on the same registry (the two would share their series).
    ///
    /// ```
    /// use dwcp_telemetry::resilience::CircuitBreaker;
    /// use dwcp_telemetry::Registry;
    ///
    /// let registry = Registry::builder().build()?;
    /// let a = CircuitBreaker::named(&registry, "database")?;
    /// let b = CircuitBreaker::named(&registry, "database")?;
    /// a.try_acquire()?.failure();
    /// use dwcp_telemetry::resilience::CallKind;
    /// assert_eq!(b.metrics().calls(CallKind::Failed), 1); // one breaker
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn named(registry: &Registry, circuit: &str) -> Result<CircuitBreaker, ConfigurationError> {
        let mut table = table();
        let breakers = breakers_of(&mut table, registry);
        if let Some(b) = breakers.get(circuit) {
            return Ok(b.clone());
        }
        let b = CircuitBreaker::new(registry, circuit, BreakerConfig::default())?;
        breakers.insert(circuit.to_owned(), b.clone());
        Ok(b)
    }

    /// Create the shared breaker named `circuit` on `registry` with `config`, before its
    /// first use (a call site with `circuit = "..."` creates it with the defaults on its
    /// first call). If it exists already, this is an error
    /// ([`ConfigurationError::AlreadyExists`]) and the existing breaker is unchanged: a
    /// configuration cannot be compared with another (it may hold closures), so configure
    /// each named breaker once, at start-up.
    ///
    /// ```
    /// use dwcp_telemetry::resilience::{BreakerConfig, CircuitBreaker, ConfigurationError};
    /// use dwcp_telemetry::Registry;
    ///
    /// let registry = Registry::builder().build()?;
    /// let config = BreakerConfig::builder().count_window(10).minimum_calls(5).build()?;
    /// let db = CircuitBreaker::configure_named(&registry, "database", config.clone())?;
    /// assert_eq!(db.name(), "database");
    /// assert!(matches!(
    ///     CircuitBreaker::configure_named(&registry, "database", config),
    ///     Err(ConfigurationError::AlreadyExists(_))
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn configure_named(
        registry: &Registry,
        circuit: &str,
        config: BreakerConfig,
    ) -> Result<CircuitBreaker, ConfigurationError> {
        let mut table = table();
        let breakers = breakers_of(&mut table, registry);
        if breakers.contains_key(circuit) {
            return Err(ConfigurationError::AlreadyExists(circuit.to_owned()));
        }
        let b = CircuitBreaker::new(registry, circuit, config)?;
        breakers.insert(circuit.to_owned(), b.clone());
        Ok(b)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::resilience::CallKind;

    #[test]
    fn named_is_shared_per_registry_and_name() {
        let r1 = Registry::builder().build().unwrap();
        let r2 = Registry::builder().build().unwrap();
        let a = CircuitBreaker::named(&r1, "db").unwrap();
        a.try_acquire().unwrap().success();
        let same = CircuitBreaker::named(&r1, "db").unwrap();
        assert_eq!(same.metrics().calls(CallKind::Successful), 1);
        let other_name = CircuitBreaker::named(&r1, "cache").unwrap();
        assert_eq!(other_name.metrics().calls(CallKind::Successful), 0);
        let other_registry = CircuitBreaker::named(&r2, "db").unwrap();
        assert_eq!(other_registry.metrics().calls(CallKind::Successful), 0);
        assert!(matches!(
            CircuitBreaker::named(&r1, ""),
            Err(ConfigurationError::Invalid(_))
        ));
    }

    #[test]
    fn configure_before_first_use_only() {
        let r = Registry::builder().build().unwrap();
        let config = BreakerConfig::builder()
            .count_window(2)
            .minimum_calls(2)
            .build()
            .unwrap();
        let b = CircuitBreaker::configure_named(&r, "db", config.clone()).unwrap();
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().failure();
        // The configured window (2 calls) tripped it; `named` returns that breaker.
        assert!(CircuitBreaker::named(&r, "db")
            .unwrap()
            .try_acquire()
            .is_err());
        assert_eq!(
            CircuitBreaker::configure_named(&r, "db", config.clone()).unwrap_err(),
            ConfigurationError::AlreadyExists("db".into())
        );
        CircuitBreaker::named(&r, "used").unwrap();
        assert!(CircuitBreaker::configure_named(&r, "used", config).is_err());
    }

    #[test]
    fn dropped_registries_are_swept() {
        let r = Registry::builder().build().unwrap();
        CircuitBreaker::named(&r, "db").unwrap();
        let dead = r.id();
        drop(r);
        assert!(table().iter().any(|(id, _)| id.same(&dead)));
        let live = Registry::builder().build().unwrap();
        CircuitBreaker::named(&live, "db").unwrap();
        assert!(!table().iter().any(|(id, _)| id.same(&dead)));
    }
}
