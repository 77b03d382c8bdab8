//! `greenroom:plugin@0.1.0` served by a host that speaks 0.2.0: the only
//! code that knows 0.1.0's types. Its imports answer through the 0.2.0
//! ones, and what its exports return is converted into the host's (0.2.0)
//! types, so nothing past this module tells the versions apart.
//!
//! 0.2.0 only added to 0.1.0, so every 0.1.0 value has a 0.2.0 value:
//! an action gains an empty form; `actions.run` of 0.1.0 receives the form
//! as JSON text and never learns who acted (see `Loaded::run_action`).

use super::bindings::v0_1::greenroom::plugin as old;
use super::bindings::v0_2::greenroom::plugin as new;
use super::host::HostState;

/// A 0.1.0 value as the host's own (0.2.0) value, or back.
pub trait Convert<T> {
    fn convert(self) -> T;
}

macro_rules! same {
    ($($t:ty),*) => {$(
        impl Convert<$t> for $t {
            fn convert(self) -> $t {
                self
            }
        }
    )*};
}
same!(String, f64, u64, u16, u8, bool);

impl<A: Convert<B>, B> Convert<Vec<B>> for Vec<A> {
    fn convert(self) -> Vec<B> {
        self.into_iter().map(Convert::convert).collect()
    }
}

impl<A: Convert<B>, B> Convert<Option<B>> for Option<A> {
    fn convert(self) -> Option<B> {
        self.map(Convert::convert)
    }
}

impl<A: Convert<B>, B, E: Convert<F>, F> Convert<Result<B, F>> for Result<A, E> {
    fn convert(self) -> Result<B, F> {
        self.map(Convert::convert).map_err(Convert::convert)
    }
}

/// Records whose fields are the same in both versions, field by field.
macro_rules! record {
    ($from:path => $to:ident { $($field:ident),* }) => {
        impl Convert<$to> for $from {
            fn convert(self) -> $to {
                $to { $($field: self.$field.convert()),* }
            }
        }
    };
}

/// Enums and variants whose cases are the same in both versions.
macro_rules! cases {
    ($from:ident => $to:ident { $($case:ident),* } $({ $($with:ident),* })?) => {
        impl Convert<$to> for $from {
            fn convert(self) -> $to {
                match self {
                    $($from::$case => $to::$case,)*
                    $($($from::$with(x) => $to::$with(x.convert()),)*)?
                }
            }
        }
    };
}

mod types_up {
    //! 0.1.0 results into the host's types.
    use super::Convert;
    use super::new::types::*;
    use super::old::types as o;

    record!(o::Link => Link { label, href });
    record!(o::Field => Field { label, value, tone });
    record!(o::Badge => Badge { label, tone });
    record!(o::Table => Table { columns, rows });
    record!(o::Progress => Progress { value, max, label });
    record!(o::Card => Card { id, title, nodes });
    record!(o::Fact => Fact { name, value, url });
    record!(o::Event => Event { id, kind, entity_ref, title, url, at_ms, tone, actor });
    record!(o::SearchDocument => SearchDocument { id, title, text, location });
    record!(o::DocPage => DocPage { path, title, markdown, nav });

    use o::{
        Cell as OCell, FactValue as OFactValue, Node as ONode, PluginError as OError, Tone as OTone,
    };
    cases!(OTone => Tone { Neutral, Info, Good, Warning, Critical });
    cases!(OCell => Cell {} { Text, Link, Badge });
    cases!(OFactValue => FactValue {} { Number, Text, Flag });
    cases!(ONode => Node { Divider } { Heading, Text, Markdown, Field, Link, Badge, Progress, Sparkline, Table, Code });
    cases!(OError => PluginError { NotApplicable } { Upstream, Config, Internal });

    impl Convert<Action> for o::Action {
        /// A 0.1.0 action has no declared form.
        fn convert(self) -> Action {
            Action {
                id: self.id,
                label: self.label,
                description: self.description,
                confirm: self.confirm,
                inputs: Vec::new(),
            }
        }
    }
}

mod types_down {
    //! The host's values a 0.1.0 plugin receives.
    use super::Convert;
    use super::new::types as n;
    use super::old::types::*;

    record!(n::Entity => Entity { entity_ref, kind, namespace, name, json });
}

mod imports {
    //! 0.1.0's imports, answered by the 0.2.0 ones.
    use super::{Convert, HostState, new, old};

    impl old::types::Host for HostState {}

    use new::log::Level;
    use old::log::Level as OLevel;
    cases!(OLevel => Level { Trace, Debug, Info, Warn, Error });

    impl old::log::Host for HostState {
        fn log(&mut self, level: old::log::Level, message: String) {
            new::log::Host::log(self, level.convert(), message)
        }
    }

    impl old::config::Host for HostState {
        fn get(&mut self, key: String) -> Option<String> {
            new::config::Host::get(self, key)
        }
    }

    impl old::kv::Host for HostState {
        fn get(&mut self, key: String) -> Option<Vec<u8>> {
            new::kv::Host::get(self, key)
        }

        fn set(&mut self, key: String, value: Vec<u8>, ttl: Option<u32>) -> Result<(), String> {
            new::kv::Host::set(self, key, value, ttl)
        }

        fn delete(&mut self, key: String) {
            new::kv::Host::delete(self, key)
        }
    }

    impl old::catalog::Host for HostState {
        fn get_entity(&mut self, entity_ref: String) -> Option<old::types::Entity> {
            new::catalog::Host::get_entity(self, entity_ref).convert()
        }

        fn query(&mut self, filter: String, limit: u32) -> Vec<old::types::Entity> {
            new::catalog::Host::query(self, filter, limit).convert()
        }
    }

    impl old::source::Host for HostState {
        fn read_file(&mut self, entity_ref: String, path: String) -> Result<String, String> {
            new::source::Host::read_file(self, entity_ref, path)
        }

        fn list_dir(&mut self, entity_ref: String, path: String) -> Result<Vec<String>, String> {
            new::source::Host::list_dir(self, entity_ref, path)
        }
    }

    use new::http::{Header, HttpError, Request, Response};
    use old::http as o;
    record!(o::Header => Header { name, value });
    record!(o::Request => Request { method, url, headers, body });
    record!(Header => OHeader { name, value });
    record!(Response => OResponse { status, headers, body });
    use o::{Header as OHeader, HttpError as OHttpError, Response as OResponse};
    cases!(HttpError => OHttpError { Timeout, TooLarge } { NotGranted, Refused, Transport });

    impl old::http::Host for HostState {
        fn fetch(&mut self, request: o::Request) -> Result<OResponse, OHttpError> {
            new::http::Host::fetch(self, request.convert()).convert()
        }
    }
}
