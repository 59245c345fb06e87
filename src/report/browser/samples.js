// flamingo-eval sample browser. Data: report_samples/index.js (FE.index), chunk_NNNNN.js (FE.chunk),
// search.js (FE.searchData), loaded as scripts so that the page works from file://. Every data text goes into
// the page through textContent only.
(function () {
  'use strict';
  var DIR = 'report_samples/';
  var PAGE = 20;
  var FE = (window.FE = { idx: null, chunks: {}, loading: {}, search: null, searchLoading: null, ready: false, renders: 0 });
  var $ = function (id) { return document.getElementById(id); };
  var STATUS = { c: 'correct', p: 'partial credit', i: 'incorrect', e: 'error', u: 'unscored' };
  var state = { view: 'all', bench: '', run: '', shot: '', trial: '', status: '', q: '', page: 0 };

  FE.fail = function (msg) { $('count').textContent = msg; };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function pad(i) { var s = String(i); while (s.length < 5) s = '0' + s; return s; }
  function loadScript(src) {
    return new Promise(function (res, rej) {
      var s = document.createElement('script');
      s.src = src;
      s.onload = function () { res(); };
      s.onerror = function () { rej(new Error('could not load ' + src)); };
      document.head.appendChild(s);
    });
  }
  FE.chunk = function (i, recs) { FE.chunks[i] = recs; };
  FE.searchData = function (arr) { FE.search = arr; };
  function chunk(i) {
    if (FE.chunks[i]) return Promise.resolve(FE.chunks[i]);
    if (!FE.loading[i]) FE.loading[i] = loadScript(DIR + 'chunk_' + pad(i) + '.js').then(function () { return FE.chunks[i]; });
    return FE.loading[i];
  }
  function record(i) { return FE.chunks[Math.floor(i / FE.idx.chunk)][i % FE.idx.chunk]; }
  function needSearch() {
    if (FE.search || !state.q) return Promise.resolve();
    if (!FE.searchLoading) FE.searchLoading = loadScript(DIR + 'search.js');
    return FE.searchLoading;
  }

  // ---- state <-> location.hash ----
  var DEFAULTS = JSON.parse(JSON.stringify(state));
  function readHash() {
    Object.keys(DEFAULTS).forEach(function (k) { state[k] = DEFAULTS[k]; });
    var h = location.hash.replace(/^#/, '');
    if (h === 'changed') h = 'view=changed';
    h.split('&').forEach(function (kv) {
      var i = kv.indexOf('=');
      if (i < 0) return;
      var k = decodeURIComponent(kv.slice(0, i)), v = decodeURIComponent(kv.slice(i + 1));
      if (k in state) state[k] = k === 'page' ? Math.max(0, parseInt(v, 10) || 0) : v;
    });
    if (state.view !== 'changed') state.view = 'all';
  }
  function writeHash() {
    var parts = [];
    Object.keys(state).forEach(function (k) {
      var v = state[k];
      if (v !== '' && !(k === 'page' && v === 0) && !(k === 'view' && v === 'all')) parts.push(k + '=' + encodeURIComponent(v));
    });
    var h = parts.length ? '#' + parts.join('&') : '';
    if (location.hash !== h) history.replaceState(null, '', h || location.pathname + location.search);
  }

  // ---- filtering (over the index only: no record is loaded for it) ----
  function matches(i, useStatus, useRun) {
    var x = FE.idx;
    if (useRun && state.run !== '' && x.run[i] !== +state.run) return false;
    if (state.bench !== '' && x.runs[x.run[i]].benchmark !== state.bench) return false;
    if (state.shot !== '' && x.shot[i] !== +state.shot) return false;
    if (state.trial !== '' && x.trial[i] !== +state.trial) return false;
    if (useStatus && state.status !== '' && state.status.indexOf(x.status[i]) < 0) return false;
    if (state.q && FE.search && FE.search[i].indexOf(state.q.toLowerCase()) < 0) return false;
    return true;
  }
  function selection() {
    var x = FE.idx, out = [], i;
    if (state.view === 'changed') {
      for (i = 0; i < x.pairs.length; i++) {
        var a = x.pairs[i][0], b = x.pairs[i][1];
        var runOk = state.run === '' || x.run[a] === +state.run || x.run[b] === +state.run;
        var ok = runOk && (matches(a, false, false) || matches(b, false, false)) &&
          (state.status === '' || state.status.indexOf(x.status[a]) >= 0 || state.status.indexOf(x.status[b]) >= 0);
        if (ok) out.push(i);
      }
    } else {
      for (i = 0; i < x.n; i++) if (matches(i, true, true)) out.push(i);
    }
    return out;
  }
  function breakdown(sel) {
    var c = {}, x = FE.idx;
    sel.forEach(function (i) { var s = state.view === 'changed' ? x.status[x.pairs[i][1]] : x.status[i]; c[s] = (c[s] || 0) + 1; });
    return Object.keys(STATUS).filter(function (k) { return c[k]; }).map(function (k) { return STATUS[k] + ' ' + c[k]; }).join(' · ');
  }

  // ---- rendering one record ----
  function scoreText(run, r) {
    if (r.sc === null || r.sc === undefined) return run.metric_key === 'cider' ? 'no per-sample CIDEr' : '–';
    if (run.metric_key === 'roc_auc') return 'P(positive) ' + r.sc.toFixed(4);
    if (run.metric_key === 'cider') return 'CIDEr-D ×100 ' + r.sc.toFixed(2) + ' (this sample, IDF of its set)';
    return run.metric_key + ' ×100 ' + (100 * r.sc).toFixed(2);
  }
  function promptNode(p) {
    var pre = el('pre', 'prompt'), k = 0;
    var parts = p.split('<image>');
    parts.forEach(function (seg, j) {
      if (j > 0) { k++; var m = el('span', 'imark', '<image ' + k + '>'); m.title = 'media ' + k + ' (see the thumbnails)'; pre.appendChild(m); }
      var bits = seg.split('<|endofchunk|>');
      bits.forEach(function (b, q) {
        if (q > 0) pre.appendChild(el('span', 'eoc', '<|endofchunk|>'));
        if (b) pre.appendChild(document.createTextNode(b));
      });
    });
    return pre;
  }
  function thumbs(r) {
    var box = el('div', 'thumbs'), nd = r.d.length, nm = r.m.length;
    r.m.forEach(function (m, j) {
      var isQuery = j >= nd;
      var t = el('div', 'thumb' + (isQuery ? ' query' : ''));
      var cap = (isQuery ? 'query' + (nm - nd > 1 ? ' ' + (j - nd + 1) : '') : 'demo ' + (j + 1) + ': ' + r.d[j]) + ' — <image ' + (j + 1) + '>';
      if (m.f) {
        var img = el('img');
        img.src = DIR + 'media/' + m.f + '.jpg';
        img.alt = cap;
        img.title = cap;
        t.appendChild(img);
      } else {
        var miss = el('div', 'miss', 'missing: ' + m.x);
        t.appendChild(miss);
      }
      t.appendChild(el('div', '', cap + (m.n ? ' (' + m.n + ' frames, first shown)' : '')));
      box.appendChild(t);
    });
    return box;
  }
  function kv(table, k, v, cls) {
    var tr = el('tr'), th = el('th', '', k), td = el('td', cls || '');
    if (v instanceof Node) td.appendChild(v); else td.textContent = v === null || v === undefined ? '–' : String(v);
    tr.appendChild(th); tr.appendChild(td); table.appendChild(tr);
    return td;
  }
  function runLabel(k) {
    var runs = FE.idx.runs, r = runs[k];
    var dup = runs.some(function (q, j) { return j !== k && q.label === r.label; });
    return dup ? r.label + ' (' + r.dir.split('/').slice(-2).join('/') + ')' : r.label;
  }
  function card(i, other) {
    var r = record(i), run = FE.idx.runs[r.r];
    var c = el('div', 'card st-' + r.st);
    c.setAttribute('data-index', i);
    var h = el('div', 'head');
    h.appendChild(el('span', 'sid', r.id));
    h.appendChild(el('span', 'badge st-' + r.st, STATUS[r.st]));
    h.appendChild(el('span', '', runLabel(r.r)));
    h.appendChild(el('span', 'muted', r.s + ' shot(s) · trial ' + r.t + ' (seed ' + r.seed + ')'));
    h.appendChild(el('span', '', scoreText(run, r)));
    c.appendChild(h);
    if (r.m.length) c.appendChild(thumbs(r));
    if (r.dt && r.dt.length) c.appendChild(el('div', 'muted', 'text-only demonstrations (zero-shot): ' + r.dt.join(', ')));
    if (r.ens && r.ens.length) c.appendChild(el('div', 'muted', 'prompt ensembling: ' + (r.ens.length + 1) + ' demonstration orders; shown: the first; the others: ' + r.ens.map(function (o) { return '[' + o.join(', ') + ']'; }).join(' ')));
    c.appendChild(promptNode(r.p));
    var t = el('table', 'kv');
    var o = other ? record(other) : null;
    kv(t, 'raw output', r.raw === null ? null : JSON.stringify(r.raw), o && o.raw !== r.raw ? 'diff' : '');
    kv(t, 'prediction', r.pr === null ? null : JSON.stringify(r.pr), o && o.pr !== r.pr ? 'diff' : '');
    kv(t, 'references', r.ref.length ? r.ref.map(function (x) { return JSON.stringify(x); }).join('  ') : '–');
    if (r.c) {
      var ct = el('table', 'cands'), hr = el('tr');
      ['candidate', 'score', 'rank'].forEach(function (x) { hr.appendChild(el('th', '', x)); });
      ct.appendChild(hr);
      r.c.forEach(function (x) {
        var tr = el('tr', (x[0] === r.pr ? 'chosen' : '') + (r.ref.indexOf(x[0]) >= 0 ? ' target' : ''));
        tr.appendChild(el('td', '', x[0]));
        tr.appendChild(el('td', '', x[1] === null ? '–' : x[1].toFixed(4)));
        tr.appendChild(el('td', '', x[2]));
        ct.appendChild(tr);
      });
      kv(t, 'candidates', ct).appendChild(el('div', 'muted', r.c.length < r.nc ? 'best ' + r.c.length + ' of ' + r.nc + ' shown (and the target)' : ''));
    }
    if (r.e) kv(t, 'error', r.e, 'err');
    c.appendChild(t);
    return c;
  }

  // ---- the page ----
  function render() {
    var token = ++FE.renders;
    writeHash();
    $('tab-all').className = 'tab' + (state.view === 'all' ? ' on' : '');
    $('tab-changed').className = 'tab' + (state.view === 'changed' ? ' on' : '');
    ['bench', 'run', 'shot', 'trial', 'status'].forEach(function (k) { $('f-' + k).value = state[k]; });
    if ($('f-q').value !== state.q) $('f-q').value = state.q;
    FE.ready = false;
    return needSearch().then(function () {
      var sel = selection();
      var pages = Math.max(1, Math.ceil(sel.length / PAGE));
      if (state.page >= pages) state.page = pages - 1;
      var slice = sel.slice(state.page * PAGE, state.page * PAGE + PAGE);
      var need = {};
      slice.forEach(function (i) {
        var ids = state.view === 'changed' ? FE.idx.pairs[i] : [i];
        ids.forEach(function (j) { need[Math.floor(j / FE.idx.chunk)] = 1; });
      });
      var what = state.view === 'changed' ? 'changed sample(s)' : 'sample(s)';
      var total = state.view === 'changed' ? FE.idx.pairs.length : FE.idx.n;
      $('count').textContent = sel.length + ' of ' + total + ' ' + what + ' match' + (sel.length ? ' — ' + breakdown(sel) : '');
      $('count').setAttribute('data-matches', sel.length);
      $('pageinfo').textContent = 'page ' + (state.page + 1) + ' of ' + pages;
      ['prev', 'prev2'].forEach(function (b) { $(b).disabled = state.page === 0; });
      ['next', 'next2'].forEach(function (b) { $(b).disabled = state.page >= pages - 1; });
      return Promise.all(Object.keys(need).map(function (k) { return chunk(+k); })).then(function () {
        if (token !== FE.renders) return;
        var list = $('list');
        list.textContent = '';
        if (state.view === 'changed') {
          slice.forEach(function (i) {
            var p = FE.idx.pairs[i], row = el('div', 'pair');
            row.appendChild(card(p[0], p[1]));
            row.appendChild(card(p[1], p[0]));
            list.appendChild(row);
          });
          if (!FE.idx.pairs.length) list.appendChild(el('p', 'muted', FE.idx.comparisons.length ? 'No sample changed its prediction or score between the runs.' : 'The changed view needs two runs of the same benchmark: flamingo-eval report BASELINE CANDIDATE --out DIR.'));
        } else {
          slice.forEach(function (i) { list.appendChild(card(i)); });
        }
        FE.ready = true;
      });
    }).catch(function (e) { FE.fail(String(e)); });
  }
  FE.render = render;
  FE.set = function (changes) { Object.keys(changes).forEach(function (k) { state[k] = changes[k]; }); if (!('page' in changes)) state.page = 0; return render(); };
  FE.state = state;

  function option(sel, value, text) { var o = el('option', '', text); o.value = value; sel.appendChild(o); }
  FE.index = function (x) {
    FE.idx = x;
    var runs = $('f-run');
    x.runs.forEach(function (r, i) { option(runs, String(i), runLabel(i)); });
    var benches = [];
    x.runs.forEach(function (r) { if (benches.indexOf(r.benchmark) < 0) benches.push(r.benchmark); });
    benches.forEach(function (b) { option($('f-bench'), b, b); });
    var uniq = function (a) { var s = {}; a.forEach(function (v) { s[v] = 1; }); return Object.keys(s).map(Number).sort(function (p, q) { return p - q; }); };
    uniq(x.shot).forEach(function (s) { option($('f-shot'), String(s), String(s)); });
    uniq(x.trial).forEach(function (t) { option($('f-trial'), String(t), String(t)); });
    $('runs-line').textContent = x.n + ' record(s) of ' + x.runs.length + ' run(s)' +
      x.comparisons.map(function (c) { return '; ' + x.runs[c.b].dir + ' vs ' + x.runs[c.a].dir + ': ' + c.changed + ' changed'; }).join('') +
      (x.missing_media ? '; ' + x.missing_media + ' media file(s) not found' : '');
    $('tab-changed').disabled = !x.comparisons.length;
    readHash();
    ['bench', 'run', 'shot', 'trial', 'status'].forEach(function (k) {
      $('f-' + k).addEventListener('change', function () { var o = {}; o[k] = this.value; FE.set(o); });
    });
    var timer = null;
    $('f-q').addEventListener('input', function () { var v = this.value; clearTimeout(timer); timer = setTimeout(function () { FE.set({ q: v }); }, 200); });
    $('tab-all').addEventListener('click', function () { FE.set({ view: 'all' }); });
    $('tab-changed').addEventListener('click', function () { FE.set({ view: 'changed' }); });
    var step = function (d) { return function () { state.page = Math.max(0, state.page + d); render(); window.scrollTo(0, 0); }; };
    $('prev').addEventListener('click', step(-1)); $('prev2').addEventListener('click', step(-1));
    $('next').addEventListener('click', step(1)); $('next2').addEventListener('click', step(1));
    window.addEventListener('hashchange', function () { readHash(); render(); });
    render();
  };
})();
