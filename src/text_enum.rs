//! Enums that travel as text: in JSON (the API and the runner's RPC) and in
//! database columns. `text_enum!` declares such an enum together with its one
//! table of names, and derives every conversion from that table, so the JSON, the
//! RPC and the stored values cannot drift apart.
//!
//! Invariants: `as_str` and `FromStr` are exact inverses over the listed names;
//! any other text (in JSON, in a request, in a stored row) is refused with
//! [`Unknown`], never mapped to a default.

/// Text that names no variant of the enum it was read as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct Unknown {
    pub kind: &'static str,
    pub value: String,
}

/// Declares `enum Name { Variant = "text", ... }` with `as_str`, `ALL`, `FromStr`,
/// `Display`, serde (as the text) and the store's `Param` / `FromValue`.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The variant's text, as it appears in JSON and in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::text_enum::Unknown;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::text_enum::Unknown {
                        kind: stringify!($name),
                        value: s.to_string(),
                    }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <String as ::serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }

        impl $crate::store::sql::Param for $name {
            fn value(&self) -> $crate::store::sql::Value<'_> {
                $crate::store::sql::Value::Text(::std::borrow::Cow::Borrowed(self.as_str()))
            }
        }

        impl $crate::store::sql::FromValue for $name {
            fn from_value(
                value: $crate::store::sql::Value<'_>,
            ) -> Result<Self, $crate::store::sql::FromValueError> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e| $crate::store::sql::FromValueError::Other(Box::new(e)))
            }
        }
    };
}

pub(crate) use text_enum;

#[cfg(test)]
mod tests {
    use crate::store::sql::Conn;

    text_enum! {
        /// A two-word sample, to check the conversions themselves.
        #[derive(Default)]
        enum Sample {
            #[default]
            One = "one",
            TwoWords = "two_words",
        }
    }

    #[test]
    fn text_round_trips_through_every_conversion() {
        let db = Conn::open_in_memory().unwrap();
        for &v in Sample::ALL {
            assert_eq!(v.as_str().parse::<Sample>(), Ok(v));
            assert_eq!(v.to_string(), v.as_str());
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{}\"", v.as_str()));
            assert_eq!(serde_json::from_str::<Sample>(&json).unwrap(), v);
            let (text, back): (String, Sample) = db
                .query_row("SELECT ?1, ?1", [v], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap();
            assert_eq!((text.as_str(), back), (v.as_str(), v));
        }
        assert_eq!(Sample::default(), Sample::One);
    }

    #[test]
    fn unknown_text_is_refused_everywhere() {
        let e = "TwoWords".parse::<Sample>().unwrap_err();
        assert_eq!(e.to_string(), "unknown Sample `TwoWords`");
        assert!(serde_json::from_str::<Sample>("\"three\"").is_err());
        assert!(serde_json::from_str::<Sample>("\"\"").is_err());
        let db = Conn::open_in_memory().unwrap();
        let stored = db.query_row("SELECT 'three'", (), |r| r.get::<_, Sample>(0));
        assert!(
            matches!(stored, Err(crate::store::SqlError::Column { .. })),
            "{stored:?}"
        );
        let not_text = db.query_row("SELECT 1", (), |r| r.get::<_, Sample>(0));
        assert!(not_text.is_err());
    }
}
