#include "report/html_page.hpp"

#include <fmt/format.h>

#include "core/units.hpp"
#include "report/dygraphs.hpp"
#include "report/escape.hpp"

namespace memscope::report {
namespace {

constexpr std::string_view kStyle = R"css(
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2329;
       margin: 0 auto; padding: 1.5em 2em 3em; max-width: 1320px; background: #fff; }
h1 { font-size: 1.5em; margin: 0 0 .2em; }
h1 .brand { color: #5a6b7b; font-weight: 500; }
h2 { font-size: 1.2em; margin: 1.6em 0 .4em; border-bottom: 1px solid #dde3e8;
     padding-bottom: .2em; }
h3 { font-size: 1.02em; margin: 1.1em 0 .3em; }
.command { font-family: ui-monospace, "DejaVu Sans Mono", monospace; background: #f3f5f7;
           padding: .45em .7em; border-radius: 4px; overflow-wrap: anywhere; margin: .3em 0 .6em; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15em 1.2em; margin: 0; }
dl.facts dt { color: #5a6b7b; }
dl.facts dd { margin: 0; }
table.summary { border-collapse: collapse; font-size: 13px; }
table.summary th, table.summary td { padding: .22em .7em; border-bottom: 1px solid #eceff2;
                                     text-align: left; vertical-align: top; white-space: nowrap; }
table.summary thead th { background: #f3f5f7; font-weight: 600; }
table.summary td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.summary .at { color: #7a8794; font-size: 12px; }
table.summary .cmd { display: block; color: #7a8794; font-size: 11.5px; max-width: 34em;
                     overflow: hidden; text-overflow: ellipsis;
                     font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
table.summary tr.total td { font-weight: 600; border-top: 2px solid #ccd3da; }
table.summary tr.sub td { color: #4a5763; font-size: 12.5px; }
table.summary tr.more td { color: #5a6b7b; font-style: italic; }
.note, .hint { color: #5a6b7b; font-size: 13px; }
.chart-box { margin: 1.2em 0 2em; }
.chart-box h3 { margin-bottom: 0; }
.chart-box .sub { margin: .1em 0 .3em; color: #4a5763; font-size: 13px; }
.controls label { margin-left: 1em; color: #1d2329; cursor: pointer; }
.legend { min-height: 1.5em; font-size: 12.5px; margin-bottom: .2em; }
.legend .dygraph-legend { position: static; width: auto; background: transparent;
                          font-size: 12.5px; }
.chart { width: 100%; height: 320px; }
.dygraph-axis-label { font-size: 12px; color: #4a5763; }
.dygraph-label.dygraph-ylabel, .dygraph-label.dygraph-xlabel { font-size: 12.5px;
                                                               color: #4a5763; }
.dygraph-annotation.peak { background: #fff4d6; border: 1px solid #c98a00; color: #7a4f00;
                           font-size: 10.5px; font-weight: 600; border-radius: 3px;
                           line-height: 15px; }
table.events td { white-space: normal; }
)css";

// Reads the inlined data and draws each chart; drag to zoom, double-click to reset, the range
// selector pans. Values arrive in each chart's unit.
constexpr std::string_view kScript = R"js(
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('memscope-data').textContent);
  function number(v) { return Math.abs(v) < 10 ? v.toFixed(2) : v.toFixed(1); }
  data.charts.forEach(function (c) {
    var el = document.getElementById('chart-' + c.id);
    if (!el || c.rows.length === 0) return;
    var controls = document.getElementById('controls-' + c.id);
    var visibility = c.labels.slice(1).map(function (name) { return c.hidden.indexOf(name) < 0; });
    var series = {};
    c.reference.forEach(function (name) {
      series[name] = {strokePattern: [8, 4], color: '#8a96a3', strokeWidth: 1.5};
    });
    var g = new Dygraph(el, c.rows, {
      labels: c.labels,
      xlabel: 'time since start (s)',
      ylabel: 'memory (' + c.unit + ')',
      legend: 'always',
      labelsDiv: document.getElementById('legend-' + c.id),
      showRangeSelector: true,
      rangeSelectorHeight: 34,
      stackedGraph: c.stacked,
      fillGraph: c.stacked,
      stackedGraphNaNFill: 'none',
      strokeWidth: 1.6,
      includeZero: true,
      series: series,
      visibility: visibility,
      xRangePad: 24,
      axes: {
        y: {axisLabelWidth: 72,
            valueFormatter: function (v) {
              return v == null || isNaN(v) ? '-' : number(v) + ' ' + c.unit;
            },
            axisLabelFormatter: function (v) { return (+v.toPrecision(6)) + ' ' + c.unit; }},
        x: {valueFormatter: function (v) { return v.toFixed(1) + ' s'; },
            axisLabelFormatter: function (v) { return (+v.toPrecision(6)) + ' s'; }}
      }
    });
    c.hidden.forEach(function (name) {
      var box = document.createElement('label');
      var input = document.createElement('input');
      input.type = 'checkbox';
      input.addEventListener('change', function () {
        g.setVisibility(c.labels.indexOf(name) - 1, input.checked);
      });
      box.appendChild(input);
      box.appendChild(document.createTextNode(' draw ' + name));
      controls.appendChild(box);
    });
    g.ready(function () {
      g.setAnnotations(c.peaks.map(function (p) {
        return {series: p.series, x: p.x, shortText: 'peak', text: p.text, width: 40, height: 17,
                tickHeight: 6, cssClass: 'peak'};
      }));
      el.setAttribute('data-rendered', 'true');
    });
  });
})();
)js";

// The embedded library without its source-map comments (nothing to fetch, even with devtools).
std::string_view without_source_map(std::string_view text, std::string_view marker) {
  const size_t map = text.rfind(marker);
  return map == std::string_view::npos ? text : text.substr(0, map);
}
std::string_view dygraphs_script() {
  return without_source_map(dygraphs_js(), "//# sourceMappingURL=");
}
std::string_view dygraphs_style() {
  return without_source_map(dygraphs_css(), "/*# sourceMappingURL=");
}

}  // namespace

std::string render_html_page(const HtmlPage& page) {
  nlohmann::json charts = nlohmann::json::array();
  for (const Chart& chart : page.charts) charts.push_back(chart_json(chart));
  const std::string data = json_for_script(nlohmann::json{{"charts", std::move(charts)}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace));

  std::string out;
  out.reserve(data.size() + dygraphs_js().size() + 32 * 1024);
  out +=
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += fmt::format("<title>memscope: {}</title>\n", html_escape(page.title));
  out += "<style>\n";
  out += dygraphs_style();
  out += "\n</style>\n<style>";
  out += kStyle;
  out +=
      "</style>\n</head>\n<body>\n<header>\n<h1><span class=\"brand\">memscope</span> "
      "report</h1>\n";
  out +=
      fmt::format("<p class=\"command\">{}</p>\n<dl class=\"facts\">\n", html_escape(page.title));
  for (const HtmlFact& fact : page.facts) {
    out +=
        fmt::format("<dt>{}</dt><dd>{}</dd>\n", html_escape(fact.label), html_escape(fact.value));
  }
  out += "</dl>\n</header>\n";

  out += "<section id=\"summary\">\n<h2>Peaks</h2>\n";
  out += page.summary_html;
  out += "</section>\n";

  if (!page.charts.empty()) {
    out +=
        "<section id=\"charts\">\n<h2>Memory over time</h2>\n<p class=\"hint\">Drag across a "
        "chart to zoom in, double-click to zoom out; the strip under each chart pans. Hover "
        "for values.</p>\n";
    for (const Chart& chart : page.charts) {
      const std::string id = html_escape(chart.id);
      out += fmt::format(
          "<div class=\"chart-box\">\n<h3>{}</h3>\n<p class=\"sub\">{}{}<span class=\"controls\" "
          "id=\"controls-{}\"></span></p>\n<div class=\"legend\" id=\"legend-{}\"></div>\n"
          "<div class=\"chart\" id=\"chart-{}\"></div>\n</div>\n",
          html_escape(chart.title), html_escape(chart.subtitle),
          chart.scale_note.empty() ? "" : html_escape(fmt::format(" The {}.", chart.scale_note)),
          id, id, id);
    }
    out += "</section>\n";
  }

  if (!page.events.empty()) {
    out +=
        "<section id=\"events\">\n<h2>Events</h2>\n<table class=\"summary events\">\n"
        "<thead><tr><th>at</th><th>event</th><th>detail</th></tr></thead>\n<tbody>\n";
    for (const RecordingEvent& event : page.events) {
      out += fmt::format("<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>\n",
                         format_duration(event.t_seconds), html_escape(event.kind),
                         html_escape(event.message));
    }
    out += "</tbody></table>\n</section>\n";
  }
  if (!page.notes.empty()) {
    out += "<section id=\"notes\">\n<h2>Notes</h2>\n<ul>\n";
    for (const std::string& note : page.notes)
      out += fmt::format("<li>{}</li>\n", html_escape(note));
    out += "</ul>\n</section>\n";
  }

  out += "<script type=\"application/json\" id=\"memscope-data\">";
  out += data;
  out += "</script>\n<script>\n";
  out += dygraphs_script();
  out += "\n</script>\n<script>";
  out += kScript;
  out += "</script>\n</body>\n</html>\n";
  return out;
}

}  // namespace memscope::report
