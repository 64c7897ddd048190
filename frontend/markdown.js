// A model's text as Markdown, built as DOM nodes (never innerHTML): whatever
// the model wrote, no tag, attribute or script of its own reaches the page.
// The subset: headings, paragraphs, lists, fenced code, inline code, bold,
// italics and http(s) links.

const INLINE = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*\s][^*]*\*)|(\[[^\]]+\]\((https?:\/\/[^\s)]+)\))/;

function inline(parent, text) {
  let rest = text;
  while (rest) {
    const match = INLINE.exec(rest);
    if (!match) {
      parent.append(rest);
      return;
    }
    parent.append(rest.slice(0, match.index));
    const [token] = match;
    let node;
    if (match[1]) {
      node = document.createElement("code");
      node.textContent = token.slice(1, -1);
    } else if (match[2]) {
      node = document.createElement("strong");
      inline(node, token.slice(2, -2));
    } else if (match[3]) {
      node = document.createElement("em");
      inline(node, token.slice(1, -1));
    } else {
      node = document.createElement("a");
      node.textContent = token.slice(1, token.indexOf("]("));
      node.href = match[5];
      node.rel = "noopener noreferrer nofollow";
      node.target = "_blank";
    }
    parent.append(node);
    rest = rest.slice(match.index + token.length);
  }
}

export function renderMarkdown(text) {
  const root = document.createElement("div");
  root.className = "markdown";
  const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
  let list = null;
  let paragraph = null;
  const close = () => {
    list = null;
    paragraph = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith("```")) {
      close();
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      const body = [];
      for (i++; i < lines.length && !lines[i].startsWith("```"); i++) body.push(lines[i]);
      code.textContent = body.join("\n");
      pre.append(code);
      root.append(pre);
      continue;
    }
    const heading = /^(#{1,3})\s+(.*)$/.exec(line);
    const item = /^\s*(?:[-*]|(\d+)[.)])\s+(.*)$/.exec(line);
    if (heading) {
      close();
      const h = document.createElement(`h${heading[1].length + 3}`);
      inline(h, heading[2]);
      root.append(h);
    } else if (item) {
      paragraph = null;
      const ordered = item[1] !== undefined;
      if (!list || (list.tagName === "OL") !== ordered) {
        list = document.createElement(ordered ? "ol" : "ul");
        root.append(list);
      }
      const li = document.createElement("li");
      inline(li, item[2]);
      list.append(li);
    } else if (!line.trim()) {
      close();
    } else {
      list = null;
      if (!paragraph) {
        paragraph = document.createElement("p");
        root.append(paragraph);
      } else {
        paragraph.append(document.createElement("br"));
      }
      inline(paragraph, line);
    }
  }
  return root;
}
