// The dashboard's only script, served as /static/app.js (CSP script-src 'self'; no inline script).
// Progressive enhancement: every page reads and every form works without it.
export const APP_JS = `'use strict';
document.documentElement.classList.add('js');
// Forms that destroy something ask first (data-confirm="…").
document.addEventListener('submit', function (e) {
  var f = e.target;
  if (f instanceof HTMLFormElement && f.dataset.confirm && !window.confirm(f.dataset.confirm)) e.preventDefault();
});
// Copy buttons for one-time secrets (data-copy="#element").
document.addEventListener('click', function (e) {
  var b = e.target instanceof Element ? e.target.closest('[data-copy]') : null;
  if (!b || !navigator.clipboard) return;
  var src = document.querySelector(b.getAttribute('data-copy'));
  if (!src) return;
  navigator.clipboard.writeText(src.textContent.trim()).then(function () { b.textContent = 'Copied'; });
});
// Span links (#span-…) open the span's details.
function openTarget() {
  var id = decodeURIComponent(location.hash.slice(1));
  var el = id ? document.getElementById(id) : null;
  if (el && el.tagName === 'DETAILS') el.open = true;
}
window.addEventListener('hashchange', openTarget);
openTarget();
`;
