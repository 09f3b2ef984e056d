//! The page frame of the webmail: header with the quota bar, navigation, and the style
//! sheet (one file, no fonts or images from elsewhere), laid out for desktops and for
//! phones from 360 px.

use super::{CSP, User, harden};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// Bytes as GB with two decimals (1 GB = 10⁹ bytes, as providers sell quotas).
pub fn gb(bytes: u64) -> String {
    format!("{:.2} GB", bytes as f64 / 1e9)
}

/// The quota bar: used and free, in % and GB.
fn quota(user: &User) -> Markup {
    let m = &user.mailbox;
    if m.quota_bytes == 0 {
        return html! {
            div.quota { span { "Spazio usato / Used: " (gb(m.used_bytes)) " (nessun limite / no limit)" } }
        };
    }
    let pct = (m.used_bytes as f64 * 100.0 / m.quota_bytes as f64).min(100.0);
    let free = m.quota_bytes.saturating_sub(m.used_bytes);
    // The bar is a <meter>: no inline style is needed, so the CSP stays strict.
    html! {
        div.quota title="quota" {
            meter #quota min="0" max="100" low="80" high="95" optimum="0" value=(format!("{pct:.1}")) {}
            span {
                (format!("{pct:.1}")) "% usato / used: " (gb(m.used_bytes)) " · "
                (format!("{:.1}", 100.0 - pct)) "% libero / free: " (gb(free))
                " · quota " (gb(m.quota_bytes))
            }
        }
    }
}

/// A whole page.
pub fn page(status: StatusCode, title: &str, user: Option<&User>, body: Markup) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="it" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — PEC" }
                link rel="stylesheet" href="/static/webmail.css";
            }
            body {
                header.top {
                    a.brand href="/" { "PEC" }
                    @if let Some(u) = user {
                        nav {
                            a href="/compose" { "Scrivi / Compose" }
                            a href="/mail?f=INBOX" { "Posta / Mail" }
                            a href="/settings" { "Sicurezza / Security" }
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(u.csrf);
                                button type="submit" { "Esci / Log out" }
                            }
                        }
                        div.who { (u.address) }
                        (quota(u))
                    }
                }
                main { (body) }
            }
        }
    };
    let mut r = (status, doc.into_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    harden(&mut r, CSP);
    r
}

/// The style sheet.
pub async fn stylesheet() -> Response {
    let mut r = CSS.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f4f6f9}
a{color:#0b5cad}
header.top{display:flex;flex-wrap:wrap;align-items:center;gap:.4rem 1rem;padding:.5rem 1rem;background:#0b3d6e;color:#fff}
header.top a{color:#fff}
.brand{font-weight:700;font-size:1.2rem;text-decoration:none}
header nav{display:flex;flex-wrap:wrap;gap:.3rem .9rem;align-items:center}
.who{margin-left:auto;opacity:.9;overflow-wrap:anywhere}
.quota{flex-basis:100%;display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;font-size:.85rem}
.quota meter{width:12rem;max-width:100%;height:.9rem;background:#dfe6ef;border-radius:4px}
form.inline{display:inline;margin:0}
form.inline button{background:none;border:1px solid #fff8;color:#fff;padding:.15rem .6rem;border-radius:4px;cursor:pointer}
main{padding:1rem;max-width:75rem;margin:0 auto}
.layout{display:grid;grid-template-columns:12rem 1fr;gap:1rem}
.folders{list-style:none;margin:0;padding:0}
.folders li a{display:flex;justify-content:space-between;padding:.35rem .6rem;border-radius:4px;text-decoration:none}
.folders li a.current{background:#dde8f5;font-weight:600}
.search{display:flex;flex-wrap:wrap;gap:.4rem;margin-bottom:.6rem}
.search input{flex:1 1 9rem;min-width:0}
input,select,textarea,button{font:inherit;padding:.4rem .5rem;border:1px solid #b8c2d0;border-radius:4px;background:#fff}
button,.button{background:#0b5cad;color:#fff;border:1px solid #0b5cad;border-radius:4px;padding:.35rem .75rem;cursor:pointer;text-decoration:none;display:inline-block}
table.list{width:100%;border-collapse:collapse;background:#fff}
table.list td,table.list th{padding:.45rem .5rem;border-bottom:1px solid #e3e7ee;text-align:left;vertical-align:top}
table.list tr.unseen td{font-weight:600}
td.subject,td.from{overflow-wrap:anywhere}
.count{background:#0b5cad;color:#fff;border-radius:999px;padding:0 .45rem;margin-left:.4rem;font-size:.8rem;font-weight:600}
.kind{display:inline-block;font-size:.75rem;font-weight:600;padding:.05rem .45rem;border-radius:999px;white-space:nowrap;border:1px solid}
.kind.posta-certificata{background:#e6f0ff;color:#0b3d6e}
.kind.accettazione,.kind.avvenuta-consegna,.kind.presa-in-carico{background:#e5f6ea;color:#11642f}
.kind.non-accettazione,.kind.errore-consegna,.kind.rilevazione-virus{background:#fde8e8;color:#8a1111}
.kind.preavviso-errore-consegna{background:#fff3d6;color:#7a4b00}
.kind.anomalia{background:#fff0e0;color:#8a4500}
.kind.ordinaria{background:#eef0f3;color:#444}
.actions{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center;margin:.6rem 0}
.pager{display:flex;gap:1rem;align-items:center;margin-top:.6rem}
.box{background:#fff;border:1px solid #d8dee8;border-radius:6px;padding:.8rem 1rem;margin:.8rem 0}
.box h2{font-size:1rem;margin:.1rem 0 .5rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .8rem;margin:0}
dl.facts dt{color:#5a6475}
dl.facts dd{margin:0;overflow-wrap:anywhere}
.ok{color:#11642f;font-weight:600}
.bad,.error{color:#8a1111;font-weight:600}
pre.text{white-space:pre-wrap;overflow-wrap:anywhere;font:inherit;margin:0}
.html-body{overflow-wrap:anywhere}
.html-body img{max-width:100%}
ol.steps{margin:.2rem 0 .6rem;padding-left:1.3rem}
.status{font-weight:600}
.status.consegnato{color:#11642f}.status.non-consegnato{color:#8a1111}
.form label{display:block;margin:.7rem 0 .2rem;font-weight:600}
.form input[type=text],.form input[type=email],.form input[type=password],.form textarea{width:100%}
.form textarea{min-height:12rem}
.narrow{max-width:26rem;margin:2rem auto}
.notice{background:#e5f6ea;border:1px solid #9fd3af;padding:.6rem .8rem;border-radius:4px}
@media (max-width:700px){
  .layout{grid-template-columns:1fr}
  .folders{display:flex;flex-wrap:wrap;gap:.3rem}
  .folders li a{padding:.25rem .5rem;border:1px solid #d8dee8}
  table.list .size{display:none}
  table.list thead{display:none}
  table.list,table.list tbody{display:block}
  table.list tr{display:flex;flex-wrap:wrap;align-items:center;gap:.15rem .5rem;padding:.45rem .2rem;border-bottom:1px solid #e3e7ee}
  table.list td{border:0;padding:0}
  table.list td.from{flex:1 1 8rem;min-width:0}
  table.list td.date-col{font-size:.8rem;color:#5a6475}
  table.list td.subject{flex-basis:100%}
  .search input{flex-basis:100%}
  dl.facts{grid-template-columns:1fr}
  dl.facts dd{margin-bottom:.3rem}
  main{padding:.6rem}
  .who{margin-left:0;flex-basis:100%}
}
"#;
