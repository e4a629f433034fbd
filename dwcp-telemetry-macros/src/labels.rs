//! `#[derive(LabelSet)]` and `#[derive(LabelValue)]`.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{
    parse_quote, Attribute, Data, DeriveInput, Error, Expr, ExprLit, Fields, Ident, Lit, LitStr,
    Path, Type, WherePredicate,
};

/// Label names the derive refuses, with the reason shown in the error.
const RESERVED: &[(&str, &str)] = &[
    (
        "version",
        "it is set once on the registry (`Registry::builder().version(..)`) and added to every series",
    ),
    ("le", "Prometheus exporters generate it for histogram buckets"),
    ("quantile", "exporters generate it for summary quantiles"),
];

/// Collects several errors so one build reports all of them.
#[derive(Default)]
struct Errors(Option<Error>);

impl Errors {
    fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(first) => first.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Which container keys a derive accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Derive {
    LabelSet,
    LabelValue,
}

/// The container (struct or enum) level `#[label(..)]` keys.
#[derive(Default)]
struct ContainerAttrs {
    krate: Option<Path>,
    rename_all: Option<Case>,
}

fn parse_container(attrs: &[Attribute], derive: Derive, errors: &mut Errors) -> ContainerAttrs {
    let mut out = ContainerAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("label")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                if out.krate.is_some() {
                    return Err(meta.error("duplicate `crate` key"));
                }
                out.krate = Some(parse_crate_path(&meta)?);
                Ok(())
            } else if derive == Derive::LabelValue && meta.path.is_ident("rename_all") {
                if out.rename_all.is_some() {
                    return Err(meta.error("duplicate `rename_all` key"));
                }
                let lit = parse_string(&meta, "rename_all")?;
                out.rename_all = Some(Case::parse(&lit)?);
                Ok(())
            } else if meta.path.is_ident("rename") {
                Err(meta.error(match derive {
                    Derive::LabelSet => "`rename` goes on a field: `#[label(rename = \"name\")]`",
                    Derive::LabelValue => {
                        "`rename` goes on a variant; to rename every variant, use \
                         `#[label(rename_all = \"...\")]` on the enum"
                    }
                }))
            } else {
                Err(meta.error(format!(
                    "unknown `label` attribute `{}`; expected {}",
                    path_text(&meta.path),
                    match derive {
                        Derive::LabelSet => "`crate = path` on the struct",
                        Derive::LabelValue =>
                            "`rename_all = \"...\"` or `crate = path` on the enum",
                    }
                )))
            }
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    out
}

/// The `rename = "..."` of a field or variant, if any.
fn parse_rename(attrs: &[Attribute], what: &str, errors: &mut Errors) -> Option<LitStr> {
    let mut rename = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("label")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                if rename.is_some() {
                    return Err(meta.error("duplicate `rename` key"));
                }
                rename = Some(parse_string(&meta, "rename")?);
                Ok(())
            } else {
                Err(meta.error(format!(
                    "unknown `label` attribute `{}` on a {what}; expected `rename = \"...\"`",
                    path_text(&meta.path),
                )))
            }
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    rename
}

/// `crate = path` or `crate = "path"`.
fn parse_crate_path(meta: &ParseNestedMeta<'_>) -> syn::Result<Path> {
    let value = meta.value()?;
    if value.peek(LitStr) {
        let lit: LitStr = value.parse()?;
        lit.parse::<Path>()
    } else {
        value.parse::<Path>().map_err(|e| {
            Error::new(
                e.span(),
                "`crate` expects a path, e.g. `#[label(crate = ::my_crate::telemetry)]`",
            )
        })
    }
}

/// `key = "string"`, with a clear error for anything else.
fn parse_string(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<LitStr> {
    let expr: Expr = meta.value()?.parse()?;
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit),
        other => Err(Error::new_spanned(
            other,
            format!("`{key}` expects a string literal, e.g. `#[label({key} = \"...\")]`"),
        )),
    }
}

fn path_text(path: &Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}

/// Why `name` cannot be a label name, if it cannot.
fn label_name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Some(format!(
            "invalid label name `{name}`: label names must match `[a-zA-Z_][a-zA-Z0-9_]*`"
        ));
    }
    if name.starts_with("__") {
        return Some(format!(
            "invalid label name `{name}`: names starting with `__` are reserved by Prometheus"
        ));
    }
    RESERVED
        .iter()
        .find(|(reserved, _)| *reserved == name)
        .map(|(_, why)| format!("`{name}` is a reserved label name: {why}"))
}

/// `#[derive(LabelSet)]`.
pub(crate) fn label_set(input: &DeriveInput) -> syn::Result<TokenStream> {
    let fields: Vec<&syn::Field> =
        match &input.data {
            Data::Struct(data) => {
                match &data.fields {
                    Fields::Named(named) => named.named.iter().collect(),
                    Fields::Unit => Vec::new(),
                    Fields::Unnamed(unnamed) => return Err(Error::new_spanned(
                        unnamed,
                        "`LabelSet` needs a struct with named fields (each field name is a label \
                     name); tuple structs have none: write `struct Name { label: Type, .. }`",
                    )),
                }
            }
            Data::Enum(data) => return Err(Error::new_spanned(
                data.enum_token,
                "`LabelSet` derives only for structs with named fields (each field is a label); \
                 for an enum of fixed label values, derive `LabelValue` and use it as a field type",
            )),
            Data::Union(data) => {
                return Err(Error::new_spanned(
                    data.union_token,
                    "`LabelSet` derives only for structs with named fields (each field is a label)",
                ))
            }
        };

    let mut errors = Errors::default();
    let attrs = parse_container(&input.attrs, Derive::LabelSet, &mut errors);
    let mut names: Vec<(String, &Ident)> = Vec::with_capacity(fields.len());
    for field in &fields {
        let Some(ident) = field.ident.as_ref() else {
            continue;
        };
        let rename = parse_rename(&field.attrs, "field", &mut errors);
        let (name, at): (String, &dyn ToTokens) = match &rename {
            Some(lit) => (lit.value(), lit),
            None => (ident.unraw().to_string(), ident),
        };
        if let Some(problem) = label_name_problem(&name) {
            let hint = if rename.is_some() {
                ""
            } else {
                "; rename the field or add `#[label(rename = \"...\")]`"
            };
            errors.push(Error::new_spanned(at, format!("{problem}{hint}")));
        } else if let Some((_, other)) = names.iter().find(|(n, _)| *n == name) {
            errors.push(Error::new_spanned(
                at,
                format!(
                    "duplicate label name `{name}` (field `{}` already has it)",
                    other.unraw()
                ),
            ));
        }
        names.push((name, ident));
    }
    errors.finish()?;

    let krate = attrs
        .krate
        .unwrap_or_else(|| parse_quote!(::dwcp_telemetry));
    let name = &input.ident;
    let label_names = names.iter().map(|(n, _)| n);

    // Bound every field type that mentions a type parameter; concrete types are checked
    // (with the error on the type) by the `<Type as LabelValue>` call below.
    let params: HashSet<Ident> = input
        .generics
        .type_params()
        .map(|p| p.ident.clone())
        .collect();
    let mut generics = input.generics.clone();
    if !params.is_empty() {
        let where_clause = generics.make_where_clause();
        for field in &fields {
            if mentions(field.ty.to_token_stream(), &params) {
                let ty = &field.ty;
                let predicate: WherePredicate = parse_quote!(#ty: #krate::labels::LabelValue);
                where_clause.predicates.push(predicate);
            }
        }
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();

    let f = Ident::new("__dwcp_f", Span::mixed_site());
    let mut bindings = Vec::with_capacity(fields.len());
    let mut values = Vec::with_capacity(fields.len());
    for (i, field) in fields.iter().enumerate() {
        let Some(ident) = field.ident.as_ref() else {
            continue;
        };
        let ty: &Type = &field.ty;
        let span = ty.span();
        let mut member = ident.clone();
        member.set_span(span);
        let buf = format_ident!("__dwcp_b{}", i, span = Span::mixed_site());
        let value = format_ident!("__dwcp_v{}", i, span = Span::mixed_site());
        let call = quote_spanned! {span=>
            <#ty as #krate::labels::LabelValue>::label_value(&self.#member, &mut #buf)
        };
        bindings.push(quote! {
            let mut #buf = #krate::labels::ValueBuf::new();
            let #value: &str = #call;
        });
        values.push(value);
    }

    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #krate::labels::LabelSet for #name #ty_generics #where_clause {
            const NAMES: &'static [&'static str] = &[#(#label_names),*];

            #[inline]
            fn with_values<__DwcpR>(
                &self,
                #f: impl ::core::ops::FnOnce(&[&str]) -> __DwcpR,
            ) -> __DwcpR {
                #(#bindings)*
                #f(&[#(#values),*])
            }
        }
    })
}

/// Whether `tokens` name one of `params` (a conservative test: any identifier match).
fn mentions(tokens: TokenStream, params: &HashSet<Ident>) -> bool {
    tokens.into_iter().any(|tt| match tt {
        TokenTree::Ident(ident) => params.contains(&ident),
        TokenTree::Group(group) => mentions(group.stream(), params),
        TokenTree::Punct(_) | TokenTree::Literal(_) => false,
    })
}

/// `#[derive(LabelValue)]`.
pub(crate) fn label_value(input: &DeriveInput) -> syn::Result<TokenStream> {
    let data =
        match &input.data {
            Data::Enum(data) => data,
            Data::Struct(data) => return Err(Error::new_spanned(
                data.struct_token,
                "`LabelValue` derives only for enums of unit variants (each variant is one fixed \
                 label value); for a struct of labels, derive `LabelSet`",
            )),
            Data::Union(data) => return Err(Error::new_spanned(
                data.union_token,
                "`LabelValue` derives only for enums of unit variants (each variant is one fixed \
                 label value)",
            )),
        };

    let mut errors = Errors::default();
    let attrs = parse_container(&input.attrs, Derive::LabelValue, &mut errors);
    let case = attrs.rename_all.unwrap_or(Case::Snake);
    let mut arms: Vec<(&Ident, LitStr)> = Vec::with_capacity(data.variants.len());
    for variant in &data.variants {
        let ident = &variant.ident;
        if !matches!(variant.fields, Fields::Unit) {
            errors.push(Error::new_spanned(
                &variant.fields,
                format!(
                    "`LabelValue` variants cannot carry data: `{}` must be a unit variant \
                     (each variant is one fixed label value)",
                    ident.unraw()
                ),
            ));
            continue;
        }
        let rename = parse_rename(&variant.attrs, "variant", &mut errors);
        let (value, at): (String, &dyn ToTokens) = match &rename {
            Some(lit) => (lit.value(), lit),
            None => (case.apply(&ident.unraw().to_string()), ident),
        };
        if value.is_empty() {
            errors.push(Error::new_spanned(at, "label values cannot be empty"));
        } else if let Some((other, _)) = arms.iter().find(|(_, v)| v.value() == value) {
            errors.push(Error::new_spanned(
                at,
                format!(
                    "duplicate label value `{value}` (variant `{}` already has it)",
                    other.unraw()
                ),
            ));
        }
        arms.push((ident, LitStr::new(&value, ident.span())));
    }
    errors.finish()?;

    let krate = attrs
        .krate
        .unwrap_or_else(|| parse_quote!(::dwcp_telemetry));
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let arms = arms
        .iter()
        .map(|(ident, value)| quote!(Self::#ident => #value));

    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #krate::labels::LabelValue for #name #ty_generics #where_clause {
            #[inline]
            fn label_value<'__dwcp>(
                &'__dwcp self,
                _: &'__dwcp mut #krate::labels::ValueBuf,
            ) -> &'__dwcp str {
                match *self {
                    #(#arms,)*
                }
            }
        }
    })
}

/// A `rename_all` rule for enum variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// `ScaleUp` → `scale_up` (the default).
    Snake,
    /// `ScaleUp` → `scale-up`.
    Kebab,
    /// `ScaleUp` → `scaleup`.
    Lower,
    /// `ScaleUp` → `SCALEUP`.
    Upper,
    /// `ScaleUp` → `SCALE_UP`.
    ScreamingSnake,
    /// `ScaleUp` → `ScaleUp`.
    Verbatim,
}

impl Case {
    const ALL: &'static [(&'static str, Case)] = &[
        ("snake_case", Case::Snake),
        ("kebab-case", Case::Kebab),
        ("lowercase", Case::Lower),
        ("UPPERCASE", Case::Upper),
        ("SCREAMING_SNAKE_CASE", Case::ScreamingSnake),
        ("verbatim", Case::Verbatim),
    ];

    fn parse(lit: &LitStr) -> syn::Result<Case> {
        let value = lit.value();
        Case::ALL
            .iter()
            .find(|(name, _)| *name == value)
            .map(|(_, case)| *case)
            .ok_or_else(|| {
                let expected: Vec<String> =
                    Case::ALL.iter().map(|(n, _)| format!("\"{n}\"")).collect();
                Error::new_spanned(
                    lit,
                    format!(
                        "unknown `rename_all` rule \"{value}\"; expected one of {}",
                        expected.join(", ")
                    ),
                )
            })
    }

    fn apply(self, name: &str) -> String {
        match self {
            Case::Snake => join(&words(name), "_", str::to_lowercase),
            Case::Kebab => join(&words(name), "-", str::to_lowercase),
            Case::Lower => name.to_lowercase(),
            Case::Upper => name.to_uppercase(),
            Case::ScreamingSnake => join(&words(name), "_", str::to_uppercase),
            Case::Verbatim => name.to_owned(),
        }
    }
}

fn join(words: &[&str], sep: &str, f: fn(&str) -> String) -> String {
    words.iter().map(|w| f(w)).collect::<Vec<_>>().join(sep)
}

/// Splits a Rust identifier into words: at `_`, before an uppercase letter that follows a
/// lowercase letter or a digit, and before the last capital of an acronym that starts a
/// new word (`HTTPRequest` → `HTTP`, `Request`). Digits stay with the word before them
/// (`Ipv4Addr` → `Ipv4`, `Addr`).
fn words(name: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None::<usize>;
    let mut prev: Option<char> = None;
    let mut iter = name.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if c == '_' {
            if let Some(s) = start.take() {
                out.push(&name[s..i]);
            }
            prev = None;
            continue;
        }
        if let (Some(s), Some(p)) = (start, prev) {
            let next_lower = iter.peek().is_some_and(|&(_, n)| n.is_lowercase());
            let boundary = c.is_uppercase()
                && (p.is_lowercase() || p.is_numeric() || (p.is_uppercase() && next_lower));
            if boundary {
                out.push(&name[s..i]);
                start = Some(i);
            }
        }
        if start.is_none() {
            start = Some(i);
        }
        prev = Some(c);
    }
    if let Some(s) = start {
        out.push(&name[s..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_camel_case() {
        assert_eq!(words("ScaleUp"), ["Scale", "Up"]);
        assert_eq!(words("Migrate"), ["Migrate"]);
        assert_eq!(words("HTTPRequest"), ["HTTP", "Request"]);
        assert_eq!(words("Http2Request"), ["Http2", "Request"]);
        assert_eq!(words("HTTP2Request"), ["HTTP2", "Request"]);
        assert_eq!(words("Ipv4Addr"), ["Ipv4", "Addr"]);
        assert_eq!(words("ABC"), ["ABC"]);
        assert_eq!(words("A"), ["A"]);
        assert_eq!(words("V2"), ["V2"]);
        assert_eq!(words("Scale_Up"), ["Scale", "Up"]);
        assert_eq!(words("already_snake"), ["already", "snake"]);
        assert_eq!(words("_Leading__Double_"), ["Leading", "Double"]);
        assert_eq!(words("ÉtatNormal"), ["État", "Normal"]);
    }

    #[test]
    fn snake_case_is_the_default_rule() {
        assert_eq!(Case::Snake.apply("ScaleUp"), "scale_up");
        assert_eq!(Case::Snake.apply("Migrate"), "migrate");
        assert_eq!(Case::Snake.apply("HTTPRequest"), "http_request");
        assert_eq!(Case::Snake.apply("Ipv4Addr"), "ipv4_addr");
        assert_eq!(
            Case::Snake.apply("NodeFailureDetected"),
            "node_failure_detected"
        );
        assert_eq!(Case::Snake.apply("A"), "a");
    }

    #[test]
    fn every_rule() {
        let cases = [
            (Case::Snake, "scale_up_v2"),
            (Case::Kebab, "scale-up-v2"),
            (Case::Lower, "scaleupv2"),
            (Case::Upper, "SCALEUPV2"),
            (Case::ScreamingSnake, "SCALE_UP_V2"),
            (Case::Verbatim, "ScaleUpV2"),
        ];
        for (case, want) in cases {
            assert_eq!(case.apply("ScaleUpV2"), want, "{case:?}");
        }
    }

    #[test]
    fn rule_names_parse() {
        for (name, case) in Case::ALL {
            let lit = LitStr::new(name, Span::call_site());
            assert_eq!(Case::parse(&lit).ok(), Some(*case));
        }
        let bad = LitStr::new("camelCase", Span::call_site());
        let err = Case::parse(&bad).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("unknown `rename_all` rule \"camelCase\"")));
    }

    #[test]
    fn label_name_rules() {
        for ok in ["operation", "_x", "A9", "shard_id"] {
            assert_eq!(label_name_problem(ok), None, "{ok}");
        }
        for bad in [
            "", "9lives", "a-b", "größe", "__x", "version", "le", "quantile",
        ] {
            assert!(label_name_problem(bad).is_some(), "{bad}");
        }
    }

    fn expand_set(input: TokenStream) -> syn::Result<String> {
        label_set(&syn::parse2(input)?).map(|t| t.to_string())
    }

    fn expand_value(input: TokenStream) -> syn::Result<String> {
        label_value(&syn::parse2(input)?).map(|t| t.to_string())
    }

    #[test]
    fn label_set_names_and_renames() {
        let out = expand_set(quote! {
            struct Req { r#type: &'static str, #[label(rename = "shard_id")] shard: u16 }
        });
        let out = out.map_err(|e| e.to_string());
        assert!(
            out.as_ref()
                .is_ok_and(|s| s.contains("& [\"type\" , \"shard_id\"]")),
            "{out:?}"
        );
    }

    #[test]
    fn label_set_errors() {
        let err = |input: TokenStream| expand_set(input).err().map(|e| e.to_string());
        assert!(err(quote!(
            struct T(u8);
        ))
        .is_some_and(|e| e.contains("named fields")));
        assert!(err(quote!(
            struct T {
                version: u8,
            }
        ))
        .is_some_and(|e| e.contains("reserved")));
        assert!(err(quote!(
            struct T {
                #[label(rename = "a")]
                b: u8,
                a: u8,
            }
        ))
        .is_some_and(|e| e.contains("duplicate label name `a`")));
        assert!(err(quote!(
            struct T {
                #[label(rename = 3)]
                b: u8,
            }
        ))
        .is_some_and(|e| e.contains("string literal")));
        assert!(err(quote!(
            struct T {
                #[label(renam = "x")]
                b: u8,
            }
        ))
        .is_some_and(|e| e.contains("unknown `label` attribute `renam`")));
        assert!(err(quote!(
            #[label(crate = "not a path")]
            struct T {
                b: u8,
            }
        ))
        .is_some());
    }

    #[test]
    fn label_value_arms() {
        let out = expand_value(quote! {
            #[label(rename_all = "kebab-case")]
            enum Op { ScaleUp, #[label(rename = "mig")] Migrate }
        });
        let out = out.map_err(|e| e.to_string());
        assert!(
            out.as_ref()
                .is_ok_and(|s| s.contains("Self :: ScaleUp => \"scale-up\"")
                    && s.contains("Self :: Migrate => \"mig\"")),
            "{out:?}"
        );
    }

    #[test]
    fn label_value_errors() {
        let err = |input: TokenStream| expand_value(input).err().map(|e| e.to_string());
        assert!(err(quote!(
            enum E {
                A(u8),
            }
        ))
        .is_some_and(|e| e.contains("unit variant")));
        assert!(err(quote!(
            enum E {
                #[label(rename = "")]
                A,
            }
        ))
        .is_some_and(|e| e.contains("empty")));
        assert!(err(quote!(
            enum E {
                ScaleUp,
                #[label(rename = "scale_up")]
                B,
            }
        ))
        .is_some_and(|e| e.contains("duplicate label value `scale_up`")));
        assert!(err(quote!(
            struct S;
        ))
        .is_some_and(|e| e.contains("enums of unit variants")));
        assert!(err(quote!(
            #[label(rename_all = "camelCase")]
            enum E {
                A,
            }
        ))
        .is_some_and(|e| e.contains("rename_all")));
    }
}
