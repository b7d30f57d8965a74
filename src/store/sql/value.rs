//! The values that cross the storage boundary, whichever engine holds them.
//!
//! SQLite has five storage classes and PostgreSQL a type per column; the store
//! modules speak neither. A parameter becomes a [`Value`] (`Param`), a column is
//! read as a [`Value`] and converted (`FromValue`). The engines map `Value` to
//! their own types at the edge (`sqlite.rs`, `pg.rs`), so a module's SQL and Rust
//! types are the same on both.

use std::borrow::Cow;

use rust_decimal::Decimal;

/// One SQL value. Borrowed where it can be: binding a `&str` copies nothing.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(Cow<'a, str>),
    Blob(Cow<'a, [u8]>),
    /// PostgreSQL's NUMERIC, which `SUM` and `AVG` of integers answer.
    Numeric(Decimal),
}

/// Why a column could not become the Rust type asked for.
#[derive(Debug, thiserror::Error)]
pub enum FromValueError {
    #[error("a {found} where {wanted} was expected")]
    Type {
        wanted: &'static str,
        found: &'static str,
    },
    #[error("{0} does not fit")]
    Range(String),
    #[error("{0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl Value<'_> {
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
            Value::Numeric(_) => "numeric",
        }
    }

    fn wrong(&self, wanted: &'static str) -> FromValueError {
        FromValueError::Type {
            wanted,
            found: self.kind(),
        }
    }

    /// The text of a TEXT value; anything else is a type error.
    pub fn as_str(&self) -> Result<&str, FromValueError> {
        match self {
            Value::Text(t) => Ok(t),
            other => Err(other.wrong("text")),
        }
    }
}

/// A Rust value that can be bound as a statement parameter.
pub trait Param {
    fn value(&self) -> Value<'_>;
}

/// A Rust value that can be read from a column.
pub trait FromValue: Sized {
    fn from_value(v: Value<'_>) -> Result<Self, FromValueError>;
}

impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}

impl<T: Param> Param for Option<T> {
    fn value(&self) -> Value<'_> {
        self.as_ref().map_or(Value::Null, Param::value)
    }
}

impl Param for Value<'_> {
    fn value(&self) -> Value<'_> {
        match self {
            Value::Text(t) => Value::Text(Cow::Borrowed(t)),
            Value::Blob(b) => Value::Blob(Cow::Borrowed(b)),
            other => other.clone(),
        }
    }
}

impl Param for str {
    fn value(&self) -> Value<'_> {
        Value::Text(Cow::Borrowed(self))
    }
}

impl Param for String {
    fn value(&self) -> Value<'_> {
        Value::Text(Cow::Borrowed(self))
    }
}

impl Param for [u8] {
    fn value(&self) -> Value<'_> {
        Value::Blob(Cow::Borrowed(self))
    }
}

impl Param for Vec<u8> {
    fn value(&self) -> Value<'_> {
        Value::Blob(Cow::Borrowed(self))
    }
}

impl<const N: usize> Param for [u8; N] {
    fn value(&self) -> Value<'_> {
        Value::Blob(Cow::Borrowed(self))
    }
}

impl Param for bool {
    fn value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}

impl Param for f64 {
    fn value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}

impl Param for f32 {
    fn value(&self) -> Value<'_> {
        Value::Real(f64::from(*self))
    }
}

/// Integers that always fit an i64.
macro_rules! small_ints {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn value(&self) -> Value<'_> {
                Value::Int(i64::from(*self))
            }
        }
    )*};
}
small_ints!(i8, i16, i32, i64, u8, u16, u32);

/// Integers that may not: larger ones are bound as text rather than wrapped, so
/// the engine refuses them loudly (as rusqlite refuses them) instead of storing a
/// negative number.
macro_rules! big_ints {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn value(&self) -> Value<'_> {
                i64::try_from(*self)
                    .map_or_else(|_| Value::Text(Cow::Owned(self.to_string())), Value::Int)
            }
        }
    )*};
}
big_ints!(u64, usize, isize);

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value<'_>) -> Result<Self, FromValueError> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

impl FromValue for i64 {
    fn from_value(v: Value<'_>) -> Result<Self, FromValueError> {
        match v {
            Value::Int(i) => Ok(i),
            Value::Numeric(d) if d.fract().is_zero() => {
                i64::try_from(d).map_err(|_| FromValueError::Range(d.to_string()))
            }
            other => Err(other.wrong("integer")),
        }
    }
}

macro_rules! narrow_ints {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: Value<'_>) -> Result<Self, FromValueError> {
                let i = i64::from_value(v)?;
                <$t>::try_from(i).map_err(|_| FromValueError::Range(i.to_string()))
            }
        }
    )*};
}
narrow_ints!(i32, i16, u8, u16, u32, u64, usize);

impl FromValue for bool {
    fn from_value(v: Value<'_>) -> Result<Self, FromValueError> {
        i64::from_value(v).map(|i| i != 0)
    }
}

impl FromValue for f64 {
    fn from_value(v: Value<'_>) -> Result<Self, FromValueError> {
        match v {
            Value::Real(f) => Ok(f),
            Value::Int(i) => Ok(i as f64),
            Value::Numeric(d) => rust_decimal::prelude::ToPrimitive::to_f64(&d)
                .ok_or(FromValueError::Range(d.to_string())),
            other => Err(other.wrong("real")),
        }
    }
}

impl FromValue for String {
    fn from_value(v: Value<'_>) -> Result<Self, FromValueError> {
        match v {
            Value::Text(t) => Ok(t.into_owned()),
            other => Err(other.wrong("text")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: Value<'_>) -> Result<Self, FromValueError> {
        match v {
            Value::Blob(b) => Ok(b.into_owned()),
            other => Err(other.wrong("blob")),
        }
    }
}

impl FromValue for Value<'static> {
    fn from_value(v: Value<'_>) -> Result<Self, FromValueError> {
        Ok(match v {
            Value::Text(t) => Value::Text(Cow::Owned(t.into_owned())),
            Value::Blob(b) => Value::Blob(Cow::Owned(b.into_owned())),
            Value::Null => Value::Null,
            Value::Int(i) => Value::Int(i),
            Value::Real(f) => Value::Real(f),
            Value::Numeric(d) => Value::Numeric(d),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_convert_only_when_they_fit() {
        assert_eq!(
            u64::MAX.value(),
            Value::Text(Cow::Owned(u64::MAX.to_string()))
        );
        assert_eq!(7u64.value(), Value::Int(7));
        assert!(u8::from_value(Value::Int(256)).is_err());
        assert_eq!(
            i64::from_value(Value::Numeric(Decimal::from(12))).unwrap(),
            12
        );
        assert!(i64::from_value(Value::Numeric(Decimal::new(15, 1))).is_err());
        assert!(i64::from_value(Value::Text("1".into())).is_err());
        assert!(bool::from_value(Value::Int(2)).unwrap());
    }

    #[test]
    fn null_is_none_and_only_none() {
        assert_eq!(Option::<i64>::from_value(Value::Null).unwrap(), None);
        assert!(i64::from_value(Value::Null).is_err());
        assert_eq!(None::<i64>.value(), Value::Null);
    }
}
