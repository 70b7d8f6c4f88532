// Subscribes to the signed-in user's events with a token minted by this
// app's backend, and resumes after the last event when the gateway ends
// the stream because the token expired (event: error, token_expired).
const state = document.getElementById('state');
const list = document.getElementById('events');
const { gateway } = await (await fetch('/config.json')).json();

let lastID = ''; // "<epoch>-<seq>" of the last event shown

async function token() {
  const res = await fetch('/token', { method: 'POST' });
  if (!res.ok) throw new Error(`token: HTTP ${res.status}`);
  return (await res.json()).token;
}

async function subscribe() {
  const u = new URL('/v1/stream', gateway);
  u.searchParams.set('access_token', await token());
  if (lastID) { // resume after it: the epoch makes a restarted gateway answer with a reset
    const i = lastID.lastIndexOf('-');
    u.searchParams.set('epoch', lastID.slice(0, i));
    u.searchParams.set('after', lastID.slice(i + 1));
  }
  const es = new EventSource(u);
  es.onopen = () => { state.textContent = 'live'; };
  es.onmessage = (m) => {
    lastID = m.lastEventId;
    const e = JSON.parse(m.data);
    const li = document.createElement('li');
    li.textContent = `${e.seq} ${e.type} ${JSON.stringify(e.data)}`;
    list.prepend(li);
  };
  es.addEventListener('error', (m) => {
    if (m.data && JSON.parse(m.data).error === 'token_expired') {
      es.close(); // a new token, then on from lastID
      state.textContent = 'token expired: renewing';
      subscribe();
    }
  });
}

subscribe().catch((err) => { state.textContent = String(err); });
