// Points the admin page's history link at /history with the page's own
// query (its token, or dev mode).
const a = document.getElementById('history-link');
if (a) a.href = '/history' + location.search;
