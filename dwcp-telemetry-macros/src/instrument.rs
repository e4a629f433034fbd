//! `#[instrument_dwcp]`: the metrics half (spans come with the tracing pipeline).

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

/// Span arguments of the future tracing pipeline: recognised, refused for now.
const SPAN_ARGS: [&str; 5] = ["skip", "skip_all", "fields", "level", "sample"];

/// The parsed attribute arguments.
#[derive(Default)]
struct Args {
    component: Option<LitStr>,
    operation: Option<LitStr>,
    registry: Option<Expr>,
    krate: Option<Path>,
    ok_if: Option<(Ident, Path)>,
    error_if: Option<(Ident, Path)>,
}

enum Arg {
    Component(LitStr),
    Operation(LitStr),
    Registry(Expr),
    Crate(Path),
    OkIf(Ident, Path),
    ErrorIf(Ident, Path),
}

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

impl Parse for Keyed {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key = Ident::parse_any(input)?.unraw();
        let name = key.to_string();
        if SPAN_ARGS.contains(&name.as_str()) {
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "`{name}` is a span argument: spans arrive with the tracing pipeline; \
                     `#[instrument_dwcp]` records metrics only for now"
                ),
            ));
        }
        let known = [
            "component",
            "operation",
            "registry",
            "crate",
            "ok_if",
            "error_if",
        ];
        if !known.contains(&name.as_str()) {
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown argument `{name}`; expected one of `component`, `operation`, \
                     `registry`, `crate`, `ok_if`, `error_if`"
                ),
            ));
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
            seen.push(name);
            match arg {
                Arg::Component(s) => args.component = Some(s),
                Arg::Operation(s) => args.operation = Some(s),
                Arg::Registry(e) => args.registry = Some(e),
                Arg::Crate(p) => args.krate = Some(p),
                Arg::OkIf(k, p) => args.ok_if = Some((k, p)),
                Arg::ErrorIf(k, p) => args.error_if = Some((k, p)),
            }
        }
        Ok(args)
    }
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
    let component = args.component.ok_or_else(|| {
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
        .unwrap_or_else(|| LitStr::new(&func.sig.ident.unraw().to_string(), func.sig.ident.span()));
    let krate = args
        .krate
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
                None => (Shape::Sync, ret_ty.clone()),
            },
            None => (Shape::Sync, None),
        }
    };
    let is_result = output
        .as_ref()
        .is_some_and(|t| last_segment_is(t, "Result").is_some());

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

    let site = quote! {
        static __DWCP_SITE: #rt::CallSite = #rt::CallSite::new(#component, #operation);
    };
    let body = &func.block;
    let typed = output.as_ref().filter(|t| !has_impl_trait(t));
    let new_body = match shape {
        Shape::Sync => {
            let closure = match &ret_ty {
                Some(t) if !has_impl_trait(t) => quote!(move || -> #t #body),
                _ => quote!(move || #body),
            };
            if matches!(ret_ty, Some(Type::Never(_))) {
                // It never returns: the guard records `panic` while unwinding (or nothing,
                // if the process exits).
                return with_block(
                    func,
                    quote! {{
                        #site
                        let _dwcp_guard = __DWCP_SITE.start(#registry);
                        #[allow(clippy::redundant_closure_call)]
                        (#closure)()
                    }},
                );
            }
            quote! {{
                #site
                let __dwcp_guard = __DWCP_SITE.start(#registry);
                #[allow(clippy::redundant_closure_call)]
                let __dwcp_out = (#closure)();
                __dwcp_guard.finish_with(&__dwcp_out, #classify);
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
                        #body
                    }
                },
                None => quote!(async move #body),
            };
            quote! {{
                #site
                let __dwcp_guard = __DWCP_SITE.start(#registry);
                let __dwcp_fut = ::core::pin::pin!(#fut);
                #rt::Watch::new(__dwcp_guard, __dwcp_fut, #classify).await
            }}
        }
        Shape::Future { boxed } => {
            let watched = quote! {
                async move {
                    let __dwcp_fut = ::core::pin::pin!(__dwcp_fut);
                    #rt::Watch::new(__dwcp_guard, __dwcp_fut, #classify).await
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
            let wrapped = if boxed {
                quote!(::std::boxed::Box::pin(#watched))
            } else {
                watched
            };
            quote! {{
                #site
                let __dwcp_guard = __DWCP_SITE.start(#registry);
                #[allow(clippy::redundant_closure_call)]
                let __dwcp_fut = #fut;
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
        assert!(err("component = \"a\", fields(x)", "fn f() {}").contains("tracing pipeline"));
        assert!(err("component = \"a\", sample = 0.1", "fn f() {}").contains("tracing pipeline"));
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
    }
}
