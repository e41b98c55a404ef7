//! INI configuration with OpenStack's section and option names, so an operator's
//! `keystone.conf` knowledge carries over. Each service declares its options as
//! [`Opt`] constants next to the code that reads them; `ferrostack config-sample`
//! prints them all with their help text.

use std::fmt::Display;
use std::path::Path;
use std::str::FromStr;

use ini::Ini;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: ini::Error },
    #[error("invalid config: {0}")]
    Parse(String),
    #[error("invalid value {value:?} for option [{section}] {name}: {reason}")]
    Invalid { section: String, name: String, value: String, reason: String },
}

/// A declared configuration option: where it lives, its default and what it does.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    pub section: &'static str,
    pub name: &'static str,
    /// The default, written as it would be in the file; empty means "unset".
    pub default: &'static str,
    pub help: &'static str,
}

impl Opt {
    /// The option's value parsed as `T`, or its default.
    pub fn get<T>(&self, config: &Config) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        let raw = config.raw(self.section, self.name).unwrap_or(self.default);
        raw.parse::<T>().map_err(|e| self.invalid(raw, e))
    }

    /// The option's value as a string, or `None` when neither set nor defaulted.
    pub fn get_str<'a>(&self, config: &'a Config) -> Option<&'a str>
    where
        'static: 'a,
    {
        let raw = config.raw(self.section, self.name).unwrap_or(self.default);
        (!raw.is_empty()).then_some(raw)
    }

    /// oslo.config booleans: true/false, yes/no, on/off, 1/0, any case.
    pub fn get_bool(&self, config: &Config) -> Result<bool, ConfigError> {
        let raw = config.raw(self.section, self.name).unwrap_or(self.default);
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(true),
            "false" | "no" | "off" | "0" => Ok(false),
            _ => Err(self.invalid(raw, "expected a boolean")),
        }
    }

    /// A comma-separated list, entries trimmed, empty entries dropped.
    pub fn get_list(&self, config: &Config) -> Vec<String> {
        config
            .raw(self.section, self.name)
            .unwrap_or(self.default)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    fn invalid(&self, value: &str, reason: impl Display) -> ConfigError {
        ConfigError::Invalid {
            section: self.section.into(),
            name: self.name.into(),
            value: value.into(),
            reason: reason.to_string(),
        }
    }
}

/// A parsed configuration: one or more INI files, then command-line overrides.
#[derive(Debug, Clone, Default)]
pub struct Config {
    ini: Ini,
}

impl Config {
    pub fn empty() -> Self {
        Config::default()
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let ini = Ini::load_from_file(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Ok(Config { ini })
    }

    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let ini = Ini::load_from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        Ok(Config { ini })
    }

    /// The raw value of `[section] name`, if the file sets it.
    pub fn raw(&self, section: &str, name: &str) -> Option<&str> {
        self.ini.get_from(Some(section), name).map(str::trim)
    }

    /// Sets `[section] name`, as a command-line option overriding the file does.
    pub fn set(&mut self, section: &str, name: &str, value: impl Into<String>) {
        self.ini.with_section(Some(section)).set(name, value.into());
    }

    /// Sets `[section] name` only when the file leaves it unset.
    pub fn set_default(&mut self, section: &str, name: &str, value: impl Into<String>) {
        if self.raw(section, name).is_none() {
            self.set(section, name, value);
        }
    }
}

/// Renders options as a commented sample file, grouped by section.
pub fn sample(opts: &[Opt]) -> String {
    let mut sections: Vec<&str> = Vec::new();
    for o in opts {
        if !sections.contains(&o.section) {
            sections.push(o.section);
        }
    }
    let mut out = String::new();
    for section in sections {
        out.push_str(&format!("[{section}]\n\n"));
        let mut seen: Vec<&str> = Vec::new();
        // Services that share an option (`[DEFAULT] host`) declare it each; it is shown once.
        for o in opts.iter().filter(|o| o.section == section) {
            if seen.contains(&o.name) {
                continue;
            }
            seen.push(o.name);
            for line in o.help.lines() {
                out.push_str(&format!("# {line}\n"));
            }
            out.push_str(&format!("#{} = {}\n\n", o.name, o.default));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPIRATION: Opt =
        Opt { section: "token", name: "expiration", default: "3600", help: "Token lifetime in seconds." };
    const ENABLED: Opt = Opt { section: "x", name: "enabled", default: "true", help: "" };
    const LIST: Opt = Opt { section: "x", name: "list", default: "a, b", help: "" };

    #[test]
    fn defaults_apply_until_the_file_sets_a_value() {
        let mut c = Config::empty();
        assert_eq!(EXPIRATION.get::<u64>(&c).unwrap(), 3600);
        c = Config::parse("[token]\nexpiration = 60\n").unwrap();
        assert_eq!(EXPIRATION.get::<u64>(&c).unwrap(), 60);
        c.set("token", "expiration", "7");
        assert_eq!(EXPIRATION.get::<u64>(&c).unwrap(), 7);
    }

    #[test]
    fn bad_values_name_the_option() {
        let c = Config::parse("[token]\nexpiration = soon\n").unwrap();
        let err = EXPIRATION.get::<u64>(&c).unwrap_err().to_string();
        assert!(err.contains("[token] expiration"), "{err}");
    }

    #[test]
    fn booleans_and_lists_parse_like_oslo_config() {
        let c = Config::parse("[x]\nenabled = No\nlist = p , ,q\n").unwrap();
        assert!(!ENABLED.get_bool(&c).unwrap());
        assert_eq!(LIST.get_list(&c), ["p", "q"]);
        assert_eq!(LIST.get_list(&Config::empty()), ["a", "b"]);
    }

    #[test]
    fn sample_lists_every_option_with_help() {
        let s = sample(&[EXPIRATION, ENABLED]);
        assert!(s.contains("[token]\n\n# Token lifetime in seconds.\n#expiration = 3600"));
        assert!(s.contains("[x]"));
    }
}
