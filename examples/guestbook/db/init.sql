-- Guestbook schema and seed data. Runs against the current database (no USE statement),
-- works on MySQL 8 and MariaDB 10.11, and can be applied more than once.
CREATE TABLE IF NOT EXISTS messages (
  id INT AUTO_INCREMENT PRIMARY KEY,
  text VARCHAR(500) NOT NULL,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Seed only an empty table.
INSERT INTO messages (id, text)
SELECT seed.id, seed.text
FROM (
  SELECT 1 AS id, 'Welcome to the guestbook!' AS text
  UNION ALL
  SELECT 2, 'Hello from the seed file.'
) AS seed
WHERE NOT EXISTS (SELECT 1 FROM messages);
