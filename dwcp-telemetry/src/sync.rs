//! A small shim that picks `loom`'s primitives under `cfg(loom)` so the lock-free paths can be
//! model-checked with `RUSTFLAGS="--cfg loom"`, and `std`'s (and `arc-swap`'s) otherwise.

use std::sync::Arc;

#[cfg(all(loom, any(feature = "otlp", test)))]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicI64, AtomicPtr, AtomicU64, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::Mutex;

#[cfg(all(not(loom), feature = "otlp"))]
pub(crate) use std::sync::atomic::AtomicUsize;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;

/// An atomically replaceable `Arc<T>`: `arc-swap` normally (wait-free reads), a loom mutex
/// under `cfg(loom)` so the copy-on-write logic around it can be model-checked.
#[derive(Debug)]
pub(crate) struct ArcCell<T> {
    #[cfg(not(loom))]
    inner: arc_swap::ArcSwap<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<Arc<T>>,
}

impl<T> ArcCell<T> {
    pub(crate) fn new(value: T) -> Self {
        #[cfg(not(loom))]
        let inner = arc_swap::ArcSwap::from_pointee(value);
        #[cfg(loom)]
        let inner = loom::sync::Mutex::new(Arc::new(value));
        ArcCell { inner }
    }

    /// Run `f` on the current value without taking a reference count (the hot lookup path).
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        #[cfg(not(loom))]
        {
            f(&self.inner.load())
        }
        #[cfg(loom)]
        {
            let current = self.load_full();
            f(&current)
        }
    }

    /// The current value.
    pub(crate) fn load_full(&self) -> Arc<T> {
        #[cfg(not(loom))]
        {
            self.inner.load_full()
        }
        #[cfg(loom)]
        {
            self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
        }
    }

    /// Replace the value.
    pub(crate) fn store(&self, value: Arc<T>) {
        #[cfg(not(loom))]
        self.inner.store(value);
        #[cfg(loom)]
        {
            *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = value;
        }
    }
}

#[cfg(loom)]
pub(crate) use loom::sync::RwLock;
#[cfg(not(loom))]
pub(crate) use std::sync::RwLock;
