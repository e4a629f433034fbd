//! `#[instrument_dwcp]`: request metrics and, for a sampled call, a trace span.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Expr, GenericArgument, Ident, ItemFn, LitStr, Path, PathArguments, ReturnType, Token, Type,
    TypeParamBound,
};

/// The parsed attribute arguments.
#[derive(Default)]
struct Args {
    component: Option<LitStr>,
    operation: Option<LitStr>,
    registry: Option<Expr>,
    krate: Option<Path>,
    ok_if: Option<(Ident, Path)>,
    error_if: Option<(Ident, Path)>,
    skip: Vec<Ident>,
    skip_all: bool,
    fields: Vec<Field>,
    level: Option<Level>,
    sample: Option<f64>,
    circuit: Option<(Ident, LitStr)>,
}

/// One `fields(..)` entry: `name = value`, `name = %value` (Display), `name = ?value` (Debug).
struct Field {
    name: String,
    span: Span,
    sigil: Option<char>,
    value: Expr,
}

#[derive(Clone, Copy)]
enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn parse(name: &str) -> Option<Level> {
        match name.to_ascii_lowercase().as_str() {
            "trace" => Some(Level::Trace),
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }

    fn tokens(self, tr: &TokenStream) -> TokenStream {
        let name = match self {
            Level::Trace => quote!(TRACE),
            Level::Debug => quote!(DEBUG),
            Level::Info => quote!(INFO),
            Level::Warn => quote!(WARN),
            Level::Error => quote!(ERROR),
        };
        quote!(#tr::Level::#name)
    }
}

enum Arg {
    Component(LitStr),
    Operation(LitStr),
    Registry(Expr),
    Crate(Path),
    OkIf(Ident, Path),
    ErrorIf(Ident, Path),
    Skip(Vec<Ident>),
    SkipAll,
    Fields(Vec<Field>),
    Level(Level),
    Sample(f64),
    Circuit(Ident, LitStr),
}

const KNOWN: [&str; 12] = [
    "component",
    "operation",
    "registry",
    "crate",
    "ok_if",
    "error_if",
    "skip",
    "skip_all",
    "fields",
    "level",
    "sample",
    "circuit",
];

/// `key = value` with the key, for duplicate detection.
struct Keyed(Ident, Arg);

fn string_value(input: ParseStream<'_>, key: &Ident) -> syn::Result<LitStr> {
    let expr: Expr = input.parse()?;
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => {
            if s.value().is_empty() {
                Err(syn::Error::new(
                    s.span(),
                    format!("`{key}` must not be empty"),
                ))
            } else {
                Ok(s)
            }
        }
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{key}` expects a string literal, e.g. `{key} = \"amst\"`"),
        )),
    }
}

fn level_value(input: ParseStream<'_>) -> syn::Result<Level> {
    let expr: Expr = input.parse()?;
    let name = match &expr {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => Some(s.value()),
        Expr::Path(p) if p.qself.is_none() => {
            p.path.segments.last().map(|s| s.ident.unraw().to_string())
        }
        _ => None,
    };
    name.as_deref().and_then(Level::parse).ok_or_else(|| {
        syn::Error::new_spanned(
            expr,
            "`level` expects one of \"trace\", \"debug\", \"info\", \"warn\", \"error\" \
             (or `Level::INFO`, ...)",
        )
    })
}

fn sample_value(input: ParseStream<'_>) -> syn::Result<f64> {
    let expr: Expr = input.parse()?;
    let bad = |e: &Expr| {
        syn::Error::new_spanned(
            e,
            "`sample` expects a ratio in [0, 1] (e.g. `sample = 0.25`) or one of `critical` \
             (100%), `standard` (10%), `background` (1%)",
        )
    };
    let ratio = match &expr {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Float(f),
            ..
        }) => f.base10_parse::<f64>().ok(),
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
        }) => i.base10_parse::<u8>().ok().map(f64::from),
        Expr::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => {
            match p.path.segments[0].ident.to_string().as_str() {
                "critical" => Some(1.0),
                "standard" => Some(0.1),
                "background" => Some(0.01),
                _ => None,
            }
        }
        _ => None,
    };
    match ratio {
        Some(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(bad(&expr)),
    }
}

impl Parse for Field {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let first = Ident::parse_any(input)?;
        let span = first.span();
        let mut name = first.unraw().to_string();
        while input.peek(Token![.]) {
            input.parse::<Token![.]>()?;
            let part = Ident::parse_any(input)?;
            name.push('.');
            name.push_str(&part.unraw().to_string());
        }
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                span,
                format!(
                    "field `{name}` expects a value: `{name} = expr` (or `= %expr`, `= ?expr`)"
                ),
            ));
        }
        input.parse::<Token![=]>()?;
        let sigil = if input.peek(Token![%]) {
            input.parse::<Token![%]>()?;
            Some('%')
        } else if input.peek(Token![?]) {
            input.parse::<Token![?]>()?;
            Some('?')
        } else {
            None
        };
        let value: Expr = input.parse()?;
        Ok(Field {
            name,
            span,
            sigil,
            value,
        })
    }
}

impl Parse for Keyed {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key = Ident::parse_any(input)?.unraw();
        let name = key.to_string();
        if !KNOWN.contains(&name.as_str()) {
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown argument `{name}`; expected one of `component`, `operation`, \
                     `registry`, `crate`, `ok_if`, `error_if`, `skip(..)`, `skip_all`, \
                     `fields(..)`, `level`, `sample`, `circuit`"
                ),
            ));
        }
        if name == "skip_all" {
            if !input.is_empty() && !input.peek(Token![,]) {
                return Err(syn::Error::new(
                    key.span(),
                    "`skip_all` takes no value: write `skip_all`",
                ));
            }
            return Ok(Keyed(key, Arg::SkipAll));
        }
        if name == "skip" || name == "fields" {
            if !input.peek(syn::token::Paren) {
                return Err(syn::Error::new(
                    key.span(),
                    format!("`{name}` expects a list: `{name}(..)`"),
                ));
            }
            let content;
            syn::parenthesized!(content in input);
            let arg = if name == "skip" {
                let list = Punctuated::<Ident, Token![,]>::parse_terminated_with(
                    &content,
                    Ident::parse_any,
                )?;
                Arg::Skip(list.into_iter().map(|i| i.unraw()).collect())
            } else {
                let list = Punctuated::<Field, Token![,]>::parse_terminated(&content)?;
                let mut fields: Vec<Field> = Vec::new();
                for f in list {
                    if fields.iter().any(|g| g.name == f.name) {
                        return Err(syn::Error::new(
                            f.span,
                            format!("duplicate field `{}`", f.name),
                        ));
                    }
                    fields.push(f);
                }
                Arg::Fields(fields)
            };
            return Ok(Keyed(key, arg));
        }
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("`{name}` expects a value: `{name} = ...`"),
            ));
        }
        input.parse::<Token![=]>()?;
        let path_value = |input: ParseStream<'_>| -> syn::Result<Path> {
            let expr: Expr = input.parse()?;
            match expr {
                Expr::Path(p) if p.qself.is_none() => Ok(p.path),
                other => Err(syn::Error::new_spanned(
                    other,
                    format!("`{name}` expects a path, e.g. `{name} = my_module::is_expected`"),
                )),
            }
        };
        let arg = match name.as_str() {
            "component" => Arg::Component(string_value(input, &key)?),
            "operation" => Arg::Operation(string_value(input, &key)?),
            "registry" => Arg::Registry(input.parse()?),
            "crate" => Arg::Crate(path_value(input)?),
            "ok_if" => Arg::OkIf(key.clone(), path_value(input)?),
            "level" => Arg::Level(level_value(input)?),
            "sample" => Arg::Sample(sample_value(input)?),
            "circuit" => Arg::Circuit(key.clone(), string_value(input, &key)?),
            _ => Arg::ErrorIf(key.clone(), path_value(input)?),
        };
        Ok(Keyed(key, arg))
    }
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let list = Punctuated::<Keyed, Token![,]>::parse_terminated(input)?;
        let mut args = Args::default();
        let mut seen: Vec<String> = Vec::new();
        for Keyed(key, arg) in list {
            let name = key.to_string();
            if seen.contains(&name) {
                return Err(syn::Error::new(
                    key.span(),
                    format!("duplicate argument `{name}`"),
                ));
            }
            let clash = match name.as_str() {
                "skip" => Some("skip_all"),
                "skip_all" => Some("skip"),
                _ => None,
            };
            if let Some(other) = clash.filter(|o| seen.iter().any(|s| s == o)) {
                return Err(syn::Error::new(
                    key.span(),
                    format!("`{name}` and `{other}` together: use one"),
                ));
            }
            seen.push(name);
            match arg {
                Arg::Component(s) => args.component = Some(s),
                Arg::Operation(s) => args.operation = Some(s),
                Arg::Registry(e) => args.registry = Some(e),
                Arg::Crate(p) => args.krate = Some(p),
                Arg::OkIf(k, p) => args.ok_if = Some((k, p)),
                Arg::ErrorIf(k, p) => args.error_if = Some((k, p)),
                Arg::Skip(v) => args.skip = v,
                Arg::SkipAll => args.skip_all = true,
                Arg::Fields(f) => args.fields = f,
                Arg::Level(l) => args.level = Some(l),
                Arg::Sample(r) => args.sample = Some(r),
                Arg::Circuit(k, s) => args.circuit = Some((k, s)),
            }
        }
        Ok(args)
    }
}

/// The function's arguments recorded as span attributes: plain identifier patterns, not
/// `self`, not skipped, not shadowed by a field of the same name.
fn recorded_args(func: &ItemFn, args: &Args) -> syn::Result<Vec<Ident>> {
    let mut names: Vec<Ident> = Vec::new();
    for input in &func.sig.inputs {
        if let syn::FnArg::Typed(pt) = input {
            if let syn::Pat::Ident(pi) = &*pt.pat {
                if pi.subpat.is_none() {
                    names.push(pi.ident.clone());
                }
            }
        }
    }
    for s in &args.skip {
        if !names.iter().any(|n| n.unraw() == *s) {
            return Err(syn::Error::new(
                s.span(),
                format!("`skip({s})`: the function has no argument `{s}`"),
            ));
        }
    }
    if args.skip_all {
        return Ok(Vec::new());
    }
    Ok(names
        .into_iter()
        .filter(|n| {
            let u = n.unraw();
            let name = u.to_string();
            !args.skip.contains(&u)
                && !name.starts_with('_')
                && !args.fields.iter().any(|f| f.name == name)
        })
        .collect())
}

/// How the function's result is produced.
enum Shape {
    /// A plain function; its return value is the output.
    Sync,
    /// An `async fn`.
    Async,
    /// A function returning `impl Future<Output = _>`, or `Pin<Box<dyn Future<..>>>`
    /// (what `#[async_trait]` produces) when `boxed`.
    Future { boxed: bool },
}

/// The output type the classification looks at.
fn last_segment_is(ty: &Type, name: &str) -> Option<PathArguments> {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last()?;
            (last.ident == name).then(|| last.arguments.clone())
        }
        Type::Group(g) => last_segment_is(&g.elem, name),
        Type::Paren(p) => last_segment_is(&p.elem, name),
        _ => None,
    }
}

/// `Output = X` among the bounds of `impl Future<..>` / `dyn Future<..>`.
fn future_output<'a>(bounds: impl IntoIterator<Item = &'a TypeParamBound>) -> Option<Option<Type>> {
    for b in bounds {
        if let TypeParamBound::Trait(t) = b {
            let last = t.path.segments.last()?;
            if last.ident == "Future" {
                if let PathArguments::AngleBracketed(a) = &last.arguments {
                    for arg in &a.args {
                        if let GenericArgument::AssocType(at) = arg {
                            if at.ident == "Output" {
                                return Some(Some(at.ty.clone()));
                            }
                        }
                    }
                }
                return Some(None);
            }
        }
    }
    None
}

/// `Pin<Box<dyn Future<Output = X> + ..>>` → `Some(X)`.
fn boxed_future_output(ty: &Type) -> Option<Option<Type>> {
    let first_arg = |args: PathArguments| match args {
        PathArguments::AngleBracketed(a) => a.args.into_iter().find_map(|g| match g {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    };
    let boxed = first_arg(last_segment_is(ty, "Pin")?)?;
    let inner = first_arg(last_segment_is(&boxed, "Box")?)?;
    match inner {
        Type::TraitObject(o) => future_output(&o.bounds),
        _ => None,
    }
}

/// Whether a type's name says it is a future the attribute cannot see into: a path whose
/// last segment ends in `Future` (`BoxFuture`, `LocalBoxFuture`, `MyFuture`).
fn named_like_a_future(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident.to_string().ends_with("Future")),
        Type::Paren(p) => named_like_a_future(&p.elem),
        Type::Group(g) => named_like_a_future(&g.elem),
        _ => false,
    }
}

/// Whether a type mentions `impl Trait` anywhere (such a type cannot annotate a closure).
fn has_impl_trait(ty: &Type) -> bool {
    fn scan(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|t| match t {
            proc_macro2::TokenTree::Ident(i) => i == "impl",
            proc_macro2::TokenTree::Group(g) => scan(g.stream()),
            _ => false,
        })
    }
    scan(quote!(#ty))
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args: Args = syn::parse2(attr)?;
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let span = item
                .clone()
                .into_iter()
                .next()
                .map_or_else(Span::call_site, |t| t.span());
            let what = if syn::parse2::<syn::TraitItemFn>(item).is_ok() {
                "`#[instrument_dwcp]` needs a function with a body"
            } else {
                "`#[instrument_dwcp]` applies to functions and methods only"
            };
            return Err(syn::Error::new(span, what));
        }
    };
    let component = args.component.clone().ok_or_else(|| {
        syn::Error::new(
            Span::call_site(),
            "`#[instrument_dwcp]` needs `component = \"...\"`",
        )
    })?;
    if let Some(c) = &func.sig.constness {
        return Err(syn::Error::new(
            c.span,
            "`#[instrument_dwcp]` cannot instrument a `const fn`",
        ));
    }
    let operation = args
        .operation
        .clone()
        .unwrap_or_else(|| LitStr::new(&func.sig.ident.unraw().to_string(), func.sig.ident.span()));
    let krate = args
        .krate
        .clone()
        .map_or_else(|| quote!(::dwcp_telemetry), |p| quote!(#p));
    let rt = quote!(#krate::instrument);
    let registry = match &args.registry {
        Some(e) => {
            // Spanned on the user's expression, so that a type error points at it.
            let call = quote_spanned!(e.span()=> __dwcp_registry_arg(#e));
            quote!(|| {
                use #rt::registry_arg as __dwcp_registry_arg;
                #call
            })
        }
        None => quote!(|| #krate::global()),
    };

    let ret_ty: Option<Type> = match &func.sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, t) => Some((**t).clone()),
    };
    let (shape, output) = if func.sig.asyncness.is_some() {
        (Shape::Async, ret_ty.clone())
    } else {
        match &ret_ty {
            Some(Type::ImplTrait(it)) => match future_output(&it.bounds) {
                Some(out) => (Shape::Future { boxed: false }, out),
                None => (Shape::Sync, ret_ty.clone()),
            },
            Some(t) => match boxed_future_output(t) {
                Some(out) => (Shape::Future { boxed: true }, out),
                None if named_like_a_future(t) => {
                    // An alias (`futures::future::BoxFuture<'_, T>`, say) or a hand-written
                    // future type: the attribute cannot see that it is a future, and would
                    // time only the making of it, recording every call `ok` at once.
                    return Err(syn::Error::new_spanned(
                        t,
                        concat!(
                            "`#[instrument_dwcp]` cannot see that this type is a future (a type ",
                            "alias or a named future type): it would time only the making of the ",
                            "future. Write the return type as `Pin<Box<dyn Future<Output = T> + ",
                            "Send + '_>>` or `impl Future<Output = T>`, or make the function an ",
                            "`async fn`",
                        ),
                    ));
                }
                None => (Shape::Sync, ret_ty.clone()),
            },
            None => (Shape::Sync, None),
        }
    };
    let is_result = output
        .as_ref()
        .is_some_and(|t| last_segment_is(t, "Result").is_some());
    if let (Some((key, _)), false) = (&args.circuit, is_result) {
        return Err(syn::Error::new(
            key.span(),
            "`circuit` needs a function returning `Result<T, E>` (a rejected call returns \
             `Err(E::from(NotPermitted))`)",
        ));
    }
    // `circuit = ".."`: the call site's breaker, and the body's early return when the
    // breaker rejects the call (`E: From<NotPermitted>`, checked at `circuit`).
    let circuit_site = args
        .circuit
        .as_ref()
        .map(|(_, lit)| quote!(.with_circuit(#lit)));
    let reject = args.circuit.as_ref().map(|(key, _)| {
        let err = quote_spanned!(key.span()=>
            ::core::result::Result::Err(::core::convert::From::from(__dwcp_np))
        );
        quote! {
            if let ::core::option::Option::Some(__dwcp_np) = __dwcp_rejected {
                return #err;
            }
        }
    });
    let acquire = if args.circuit.is_some() {
        quote! {
            let (__dwcp_permit, __dwcp_rejected) = match __dwcp_guard.acquire() {
                ::core::result::Result::Ok(__dwcp_p) => (__dwcp_p, ::core::option::Option::None),
                ::core::result::Result::Err(__dwcp_np) => {
                    (::core::option::Option::None, ::core::option::Option::Some(__dwcp_np))
                }
            };
        }
    } else {
        TokenStream::new()
    };

    // The classification closure, `|&Output| -> Outcome`.
    let label_of = |v: TokenStream| {
        quote! {{
            #[allow(unused_imports)]
            use #rt::__private::{ViaErrorLabel as _, ViaTypeName as _};
            (&&#rt::__private::ErrorTag(#v)).__dwcp_error_type()
        }}
    };
    let classify = if is_result {
        let ok_guard = args.ok_if.as_ref().map(|(_, p)| quote!(if #p(__dwcp_e)));
        let ok_if_arm =
            ok_guard.map(|g| quote!(::core::result::Result::Err(__dwcp_e) #g => #rt::Outcome::Ok,));
        let error_if_arm = args.error_if.as_ref().map(|(_, p)| {
            let label = label_of(quote!(__dwcp_v));
            quote!(::core::result::Result::Ok(__dwcp_v) if #p(__dwcp_v) => #rt::Outcome::Error(#label),)
        });
        let err_label = label_of(quote!(__dwcp_e));
        quote! {
            |__dwcp_out| match __dwcp_out {
                #ok_if_arm
                #error_if_arm
                ::core::result::Result::Ok(_) => #rt::Outcome::Ok,
                ::core::result::Result::Err(__dwcp_e) => #rt::Outcome::Error(#err_label),
            }
        }
    } else {
        if let Some((key, _)) = &args.ok_if {
            return Err(syn::Error::new(
                key.span(),
                "`ok_if` needs a function returning `Result` (it classifies the `Err` value)",
            ));
        }
        match &args.error_if {
            Some((_, p)) => {
                let label = label_of(quote!(__dwcp_out));
                quote! {
                    |__dwcp_out| if #p(__dwcp_out) {
                        #rt::Outcome::Error(#label)
                    } else {
                        #rt::Outcome::Ok
                    }
                }
            }
            None => quote!(|_| #rt::Outcome::Ok),
        }
    };

    // A failed sampled call's `exception.*`: only called for a sampled error.
    let exc_of = |v: TokenStream| {
        quote! {{
            #[allow(unused_imports)]
            use #rt::__private::{ExcDebug as _, ExcDisplay as _, ExcNothing as _};
            (&&&#rt::__private::ExcTag(#v)).__dwcp_exception()
        }}
    };
    let describe = if is_result {
        let ok = exc_of(quote!(__dwcp_v));
        let err = exc_of(quote!(__dwcp_e));
        quote! {
            |__dwcp_out| match __dwcp_out {
                ::core::result::Result::Ok(__dwcp_v) => #ok,
                ::core::result::Result::Err(__dwcp_e) => #err,
            }
        }
    } else {
        let v = exc_of(quote!(__dwcp_out));
        quote!(|__dwcp_out| #v)
    };

    let tr = quote!(#rt::__private::tracing);
    let level = args.level.unwrap_or(Level::Info).tokens(&tr);
    let sample = match args.sample {
        Some(r) => quote!(::core::option::Option::Some(#r)),
        None => quote!(::core::option::Option::None),
    };
    let function = LitStr::new(&func.sig.ident.unraw().to_string(), func.sig.ident.span());
    let site = quote! {
        static __DWCP_SITE: #rt::CallSite = #rt::CallSite::with_span(
            #component,
            #operation,
            #rt::SpanSite {
                function: #function,
                namespace: ::core::module_path!(),
                sample: #sample,
            },
        )#circuit_site;
    };
    // Attributes, read only for a sampled call with a sink: the arguments, then `fields`.
    let mut attrs = Vec::new();
    for name in recorded_args(&func, &args)? {
        let key = LitStr::new(&name.unraw().to_string(), name.span());
        attrs.push(quote! {
            __dwcp_span.attr(#key, (&&&&#rt::__private::AttrTag(&#name)).__dwcp_attr());
        });
    }
    for f in &args.fields {
        let key = LitStr::new(&f.name, f.span);
        let v = &f.value;
        let value = match f.sigil {
            Some('%') => quote_spanned!(v.span()=> #rt::__private::display(&(#v))),
            Some(_) => quote_spanned!(v.span()=> #rt::__private::debug(&(#v))),
            None => quote!((&&&&#rt::__private::AttrTag(&(#v))).__dwcp_attr()),
        };
        attrs.push(quote!(__dwcp_span.attr(#key, #value);));
    }
    let record = if attrs.is_empty() {
        TokenStream::new()
    } else {
        quote! {
            if __dwcp_span.recording() {
                #[allow(unused_imports)]
                use #rt::__private::{
                    ViaDebug as _, ViaDisplay as _, ViaNothing as _, ViaPrimitive as _,
                };
                #(#attrs)*
            }
        }
    };
    let start_call = quote! {
        let mut __dwcp_guard = __DWCP_SITE.start(
            #registry,
            #tr::level_enabled!(#level),
        );
    };
    let span_setup = quote! {
        if let ::core::option::Option::Some(__dwcp_span) = __dwcp_guard.span() {
            #record
            if __dwcp_span.wants_tracing() {
                let __dwcp_tracing = #tr::span!(
                    target: ::core::module_path!(),
                    #level,
                    #operation,
                    dwcp.component = #component,
                    trace_id = %__dwcp_span.trace_id(),
                    span_id = %__dwcp_span.span_id(),
                );
                __dwcp_span.set_tracing(__dwcp_tracing);
            }
        }
        __dwcp_guard.time();
    };
    let start = quote!(#start_call #span_setup);
    // The lean shapes' start (no `circuit`): the handles, whether `tracing` wants the call,
    // `__dwcp_lean` from `start_lean` (`start_lean_async` for an `async fn`), `None` when
    // spans are on, and `__dwcp_full`, the full guard then, with its span's attributes read
    // from the arguments before the body takes them. In a plain fn the guard is made in
    // place (`Some(start_spans(..))`) and its span set up through `&mut`: setting it up first
    // and then moving it into `Some` costs an unsampled call 12 instructions (265, not 253).
    // In an `async fn` it is set up in a block of its own and then moved: a local borrowed
    // there is kept in the future's state across the await, even after it is moved out.
    let lean_prelude = |in_async_body: bool| {
        let start_lean = if in_async_body {
            quote!(start_lean_async)
        } else {
            quote!(start_lean)
        };
        let full = if in_async_body {
            quote! {
                #[allow(unused_mut)]
                let mut __dwcp_full = match &__dwcp_lean {
                    ::core::option::Option::Some(_) => ::core::option::Option::None,
                    ::core::option::Option::None => {
                        let mut __dwcp_guard =
                            __DWCP_SITE.start_spans(__dwcp_handles, __dwcp_tracing_on);
                        #span_setup
                        ::core::option::Option::Some(__dwcp_guard)
                    }
                };
            }
        } else {
            quote! {
                #[allow(unused_mut)]
                let mut __dwcp_full = match &__dwcp_lean {
                    ::core::option::Option::Some(_) => ::core::option::Option::None,
                    ::core::option::Option::None => ::core::option::Option::Some(
                        __DWCP_SITE.start_spans(__dwcp_handles, __dwcp_tracing_on),
                    ),
                };
                if let ::core::option::Option::Some(__dwcp_guard) = &mut __dwcp_full {
                    #span_setup
                }
            }
        };
        quote! {
            let __dwcp_handles = __DWCP_SITE.handles(#registry);
            let __dwcp_tracing_on = #tr::level_enabled!(#level);
            let __dwcp_lean = __DWCP_SITE.#start_lean(__dwcp_handles, __dwcp_tracing_on);
            #full
        }
    };
    let body = &func.block;
    let typed = output.as_ref().filter(|t| !has_impl_trait(t));
    let new_body = match shape {
        Shape::Sync => {
            let closure = match (&ret_ty, &reject) {
                (Some(t), None) if !has_impl_trait(t) => quote!(move || -> #t #body),
                (_, None) => quote!(move || #body),
                (Some(t), Some(r)) if !has_impl_trait(t) => quote!(move || -> #t { #r #body }),
                (_, Some(r)) => quote!(move || { #r #body }),
            };
            if matches!(ret_ty, Some(Type::Never(_))) {
                // It never returns: the guard records `panic` while unwinding (or nothing,
                // if the process exits).
                return with_block(
                    func,
                    quote! {{
                        #site
                        #start
                        let _dwcp_entered = __dwcp_guard.enter();
                        #[allow(clippy::redundant_closure_call)]
                        (#closure)()
                    }},
                );
            }
            if args.circuit.is_none() {
                // Spans off: the lean guard, metrics only. Spans on: the full guard. The body
                // closure is called in one branch or the other.
                let prelude = lean_prelude(false);
                return with_block(
                    func,
                    quote! {{
                        #site
                        #prelude
                        #[allow(unused_mut)]
                        let mut __dwcp_body = #closure;
                        match (__dwcp_lean, &mut __dwcp_full) {
                            (::core::option::Option::Some(mut __dwcp_lean), _) => {
                                __dwcp_lean.time();
                                let __dwcp_out = __dwcp_body();
                                __dwcp_lean.finish_with(&__dwcp_out, #classify);
                                __dwcp_out
                            }
                            (::core::option::Option::None, ::core::option::Option::Some(__dwcp_guard)) => {
                                __dwcp_guard.run_sync(__dwcp_body, #classify, #describe)
                            }
                            (::core::option::Option::None, ::core::option::Option::None) => {
                                ::core::unreachable!()
                            }
                        }
                    }},
                );
            }
            let finish = quote!(__dwcp_guard.finish_permit(&__dwcp_out, __dwcp_permit, #classify, #describe););
            quote! {{
                #site
                #start
                #acquire
                let __dwcp_out = {
                    let _dwcp_entered = __dwcp_guard.enter();
                    #[allow(clippy::redundant_closure_call)]
                    (#closure)()
                };
                #finish
                __dwcp_out
            }}
        }
        Shape::Async => {
            // A `return` of the declared type, never taken, fixes the block's output type
            // before its body is checked: `?` converts and the tail coerces as in the fn.
            let fut = match typed {
                Some(t) => quote! {
                    async move {
                        #[allow(unreachable_code, clippy::diverging_sub_expression)]
                        if false {
                            let __dwcp_never: #t = loop {};
                            return __dwcp_never;
                        }
                        #reject
                        #body
                    }
                },
                None if reject.is_some() => quote!(async move { #reject #body }),
                None => quote!(async move #body),
            };
            if args.circuit.is_none() {
                // Spans off: the lean watch, metrics only. Spans on: the full guard in
                // `Watch`. The body's future is made once, after the span's attributes are
                // read, and awaited in one branch or the other.
                let prelude = lean_prelude(true);
                return with_block(
                    func,
                    quote! {{
                        #site
                        #prelude
                        let __dwcp_fut = #fut;
                        match __dwcp_lean {
                            ::core::option::Option::Some(__dwcp_lean) => {
                                // `None` (nothing to drop): moved out here, so that it is not
                                // kept across the await.
                                ::core::mem::forget(__dwcp_full);
                                #rt::LeanWatch::new(__dwcp_lean, __dwcp_fut, #classify).await
                            }
                            ::core::option::Option::None => match __dwcp_full {
                                ::core::option::Option::Some(__dwcp_guard) => {
                                    let __dwcp_fut = ::core::pin::pin!(__dwcp_fut);
                                    #rt::Watch::new(__dwcp_guard, __dwcp_fut, #classify, #describe).await
                                }
                                ::core::option::Option::None => ::core::unreachable!(),
                            },
                        }
                    }},
                );
            }
            quote! {{
                #site
                #start
                #acquire
                let __dwcp_fut = ::core::pin::pin!(#fut);
                #rt::Watch::new(__dwcp_guard, __dwcp_fut, #classify, #describe).with_permit(__dwcp_permit).await
            }}
        }
        Shape::Future { boxed } => {
            let permit = args
                .circuit
                .as_ref()
                .map(|_| quote!(.with_permit(__dwcp_permit)));
            let watched = quote! {
                async move {
                    let __dwcp_fut = ::core::pin::pin!(__dwcp_fut);
                    #rt::Watch::new(__dwcp_guard, __dwcp_fut, #classify, #describe)#permit.await
                }
            };
            // Pin the future's output to the declared one before it is classified, so that
            // the error type is known when its label is chosen.
            let fut = match (boxed, &ret_ty, typed) {
                (true, Some(t), _) => quote!((move || -> #t #body)()),
                (false, _, Some(out)) => {
                    quote!(#rt::expect_output::<#out, _>((move || #body)()))
                }
                _ => quote!((move || #body)()),
            };
            let wrap = |watched: TokenStream| {
                if boxed {
                    quote!(::std::boxed::Box::pin(#watched))
                } else {
                    watched
                }
            };
            if args.circuit.is_none() {
                // Spans off: the lean guard while the body makes the future (a panic there is
                // the call's), then the lean watch. Spans on: the full guard in `Watch`. The
                // body's closure is made once and called in one branch or the other.
                let (closure, call) = match (boxed, &ret_ty, typed) {
                    (true, Some(t), _) => (quote!(move || -> #t #body), quote!(__dwcp_make())),
                    (false, _, Some(out)) => (
                        quote!(move || #body),
                        quote!(#rt::expect_output::<#out, _>(__dwcp_make())),
                    ),
                    _ => (quote!(move || #body), quote!(__dwcp_make())),
                };
                let watched = wrap(quote! {
                    async move {
                        match (__dwcp_pending, __dwcp_full) {
                            (::core::option::Option::Some(__dwcp_pending), _) => {
                                #rt::LeanWatch::resume(__dwcp_pending, __dwcp_fut, #classify).await
                            }
                            (::core::option::Option::None, ::core::option::Option::Some(__dwcp_guard)) => {
                                let __dwcp_fut = ::core::pin::pin!(__dwcp_fut);
                                #rt::Watch::new(__dwcp_guard, __dwcp_fut, #classify, #describe).await
                            }
                            (::core::option::Option::None, ::core::option::Option::None) => {
                                ::core::unreachable!()
                            }
                        }
                    }
                });
                let prelude = lean_prelude(false);
                return with_block(
                    func,
                    quote! {{
                        #site
                        #prelude
                        #[allow(unused_mut)]
                        let mut __dwcp_make = #closure;
                        let (__dwcp_pending, __dwcp_fut) = match __dwcp_lean {
                            ::core::option::Option::Some(mut __dwcp_lean) => {
                                __dwcp_lean.time();
                                let __dwcp_fut = #call;
                                (::core::option::Option::Some(__dwcp_lean.pending()), __dwcp_fut)
                            }
                            ::core::option::Option::None => {
                                let __dwcp_fut = match &__dwcp_full {
                                    ::core::option::Option::Some(__dwcp_guard) => {
                                        let _dwcp_entered = __dwcp_guard.enter();
                                        #call
                                    }
                                    ::core::option::Option::None => ::core::unreachable!(),
                                };
                                (::core::option::Option::None, __dwcp_fut)
                            }
                        };
                        #watched
                    }},
                );
            }
            let wrapped = wrap(watched);
            let make = quote! {{
                let _dwcp_entered = __dwcp_guard.enter();
                #[allow(clippy::redundant_closure_call)]
                #fut
            }};
            // With a breaker: the body (which makes the future) runs only if permitted; a
            // rejected call's future is ready with the `Err`.
            let make = match &args.circuit {
                Some((key, _)) => {
                    let err = quote_spanned!(key.span()=>
                        ::core::result::Result::Err(::core::convert::From::from(__dwcp_np))
                    );
                    quote! {{
                        let __dwcp_gate = match __dwcp_rejected {
                            ::core::option::Option::None => ::core::result::Result::Ok(#make),
                            ::core::option::Option::Some(__dwcp_np) => {
                                ::core::result::Result::Err(__dwcp_np)
                            }
                        };
                        async move {
                            match __dwcp_gate {
                                ::core::result::Result::Ok(__dwcp_f) => __dwcp_f.await,
                                ::core::result::Result::Err(__dwcp_np) => #err,
                            }
                        }
                    }}
                }
                None => make,
            };
            quote! {{
                #site
                #start
                #acquire
                let __dwcp_fut = #make;
                #wrapped
            }}
        }
    };
    with_block(func, new_body)
}

fn with_block(mut func: ItemFn, block: TokenStream) -> syn::Result<TokenStream> {
    *func.block = syn::parse2(block)?;
    Ok(quote!(#func))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(s: &str) -> Type {
        syn::parse_str(s).unwrap()
    }

    fn err(attr: &str, item: &str) -> String {
        match expand(attr.parse().unwrap(), item.parse().unwrap()) {
            Ok(_) => panic!("expected an error for `{attr}` on `{item}`"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn result_detection() {
        assert!(last_segment_is(&ty("Result<u8, E>"), "Result").is_some());
        assert!(last_segment_is(&ty("std::io::Result<u8>"), "Result").is_some());
        assert!(last_segment_is(&ty("Option<Result<u8, E>>"), "Result").is_none());
        assert!(last_segment_is(&ty("&Result<u8, E>"), "Result").is_none());
    }

    #[test]
    fn future_outputs() {
        let out = boxed_future_output(&ty(
            "Pin<Box<dyn Future<Output = Result<u8, E>> + Send + '_>>",
        ));
        assert_eq!(
            out.flatten().map(|t| quote!(#t).to_string()),
            Some(quote!(Result<u8, E>).to_string())
        );
        assert!(boxed_future_output(&ty("Pin<Box<u8>>")).is_none());
        let Type::ImplTrait(it) = ty("impl Send + Future<Output = u8>") else {
            panic!("not impl Trait");
        };
        assert!(future_output(&it.bounds).flatten().is_some());
        assert!(has_impl_trait(&ty("Vec<impl Send>")));
        assert!(!has_impl_trait(&ty("Vec<&'static str>")));
    }

    #[test]
    fn argument_errors() {
        assert!(err("", "fn f() {}").contains("needs `component"));
        assert!(err("component = \"a\", component = \"b\"", "fn f() {}").contains("duplicate"));
        assert!(err("component = \"a\", fields(x)", "fn f() {}").contains("expects a value"));
        assert!(err("component = \"a\", sample = 2.0", "fn f() {}").contains("ratio in [0, 1]"));
        assert!(err("component = \"a\", circuit = \"p\"", "fn f() {}").contains("`circuit` needs"));
        assert!(err("component = \"a\", circuit = \"\"", "fn f() {}").contains("must not be empty"));
        assert!(err("component = \"a\", circuit = p", "fn f() {}").contains("string literal"));
        let twice = "component = \"a\", circuit = \"p\", circuit = \"q\"";
        assert!(err(twice, "fn f() -> Result<u8, E> { Ok(1) }").contains("duplicate"));
        assert!(err("component = \"a\", skip(y)", "fn f(x: u8) {}").contains("no argument `y`"));
        assert!(err("component = \"a\", foo = 1", "fn f() {}").contains("unknown argument `foo`"));
        assert!(err("component = \"a\"", "struct S;").contains("functions and methods only"));
        assert!(err("component = \"a\", ok_if = f", "fn f() -> u8 { 1 }").contains("`ok_if` needs"));
        assert!(err("component = \"a\", crate = 1", "fn f() {}").contains("expects a path"));
    }

    #[test]
    fn expands_every_shape() {
        for item in [
            "fn f() {}",
            "fn f(&self) -> &str { &self.0 }",
            "async fn f() -> Result<u8, E> { Ok(1) }",
            "fn f() -> impl Future<Output = u8> { async { 1 } }",
            "fn f() -> Pin<Box<dyn Future<Output = u8> + Send>> { Box::pin(async { 1 }) }",
        ] {
            let out = expand(quote!(component = "a"), item.parse().unwrap()).unwrap();
            let text = out.to_string();
            assert!(text.contains("__DWCP_SITE"), "{item}: {text}");
            syn::parse2::<ItemFn>(out).unwrap();
        }
        for item in [
            "fn f() -> Result<u8, E> { Ok(1) }",
            "async fn f() -> Result<u8, E> { Ok(1) }",
            "fn f() -> impl Future<Output = Result<u8, E>> { async { Ok(1) } }",
            "fn f() -> Pin<Box<dyn Future<Output = io::Result<u8>> + Send>> { todo!() }",
        ] {
            let out = expand(
                quote!(component = "a", circuit = "db"),
                item.parse().unwrap(),
            );
            let text = out.unwrap().to_string();
            assert!(text.contains("with_circuit"), "{item}: {text}");
            assert!(text.contains("__dwcp_permit"), "{item}: {text}");
        }
    }
}
