//! An in-memory backend.
