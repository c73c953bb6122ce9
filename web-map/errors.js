// Loaded first, as a classic script: records every error the page meets (uncaught exceptions,
// rejected promises, console.error, blocked requests to other hosts) in window.sgErrors, for the
// browser test and for an engineer at the wall's console.
(function () {
  var errors = (window.sgErrors = []);
  var record = function (kind, detail) {
    errors.push(kind + ': ' + detail);
  };
  var consoleError = console.error.bind(console);
  console.error = function () {
    record('console.error', Array.prototype.map.call(arguments, String).join(' '));
    consoleError.apply(null, arguments);
  };
  window.addEventListener('error', function (e) {
    record('error', (e.message || e.type) + ' ' + (e.filename || (e.target && (e.target.src || e.target.href)) || ''));
  }, true);
  window.addEventListener('unhandledrejection', function (e) {
    record('unhandledrejection', e.reason && (e.reason.stack || e.reason.message) || String(e.reason));
  });
  document.addEventListener('securitypolicyviolation', function (e) {
    record('csp', e.violatedDirective + ' ' + e.blockedURI);
  });
})();
