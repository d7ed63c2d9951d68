using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Orchestrator.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class Memory : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "MemoryItems",
                columns: table => new
                {
                    Seq = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    Tenant = table.Column<string>(type: "TEXT", maxLength: 100, nullable: false),
                    Principal = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    Session = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    Kind = table.Column<string>(type: "TEXT", maxLength: 20, nullable: false),
                    Role = table.Column<string>(type: "TEXT", maxLength: 20, nullable: false),
                    Text = table.Column<string>(type: "TEXT", nullable: false),
                    JobId = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    NodeId = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    Ordinal = table.Column<int>(type: "INTEGER", nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    ExpiresAt = table.Column<DateTime>(type: "TEXT", nullable: true),
                    Bytes = table.Column<int>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_MemoryItems", x => x.Seq);
                });

            migrationBuilder.CreateIndex(
                name: "IX_MemoryItems_ExpiresAt",
                table: "MemoryItems",
                column: "ExpiresAt");

            migrationBuilder.CreateIndex(
                name: "IX_MemoryItems_JobId_NodeId_Ordinal",
                table: "MemoryItems",
                columns: new[] { "JobId", "NodeId", "Ordinal" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_MemoryItems_Tenant_Principal_Kind_Seq",
                table: "MemoryItems",
                columns: new[] { "Tenant", "Principal", "Kind", "Seq" });

            migrationBuilder.CreateIndex(
                name: "IX_MemoryItems_Tenant_Principal_Seq",
                table: "MemoryItems",
                columns: new[] { "Tenant", "Principal", "Seq" });

            migrationBuilder.CreateIndex(
                name: "IX_MemoryItems_Tenant_Principal_Session_Kind_Seq",
                table: "MemoryItems",
                columns: new[] { "Tenant", "Principal", "Session", "Kind", "Seq" });

            migrationBuilder.CreateIndex(
                name: "IX_MemoryItems_Tenant_Principal_Session_Seq",
                table: "MemoryItems",
                columns: new[] { "Tenant", "Principal", "Session", "Seq" });

            // Text search: an FTS5 index over the items' text (external content: the text is stored once, in MemoryItems),
            // kept by triggers in the same transaction as every insert and delete, so a forgotten item is gone from the
            // index at once. Seq is the rowid (INTEGER PRIMARY KEY), which VACUUM keeps.
            migrationBuilder.Sql("""
                CREATE VIRTUAL TABLE "MemorySearch" USING fts5("Text", content='MemoryItems', content_rowid='Seq', tokenize='unicode61 remove_diacritics 2');
                """);
            migrationBuilder.Sql("""
                CREATE TRIGGER "MemoryItems_search_insert" AFTER INSERT ON "MemoryItems" BEGIN
                    INSERT INTO "MemorySearch"(rowid, "Text") VALUES (new."Seq", new."Text");
                END;
                """);
            migrationBuilder.Sql("""
                CREATE TRIGGER "MemoryItems_search_delete" AFTER DELETE ON "MemoryItems" BEGIN
                    INSERT INTO "MemorySearch"("MemorySearch", rowid, "Text") VALUES ('delete', old."Seq", old."Text");
                END;
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""DROP TRIGGER IF EXISTS "MemoryItems_search_delete";""");
            migrationBuilder.Sql("""DROP TRIGGER IF EXISTS "MemoryItems_search_insert";""");
            migrationBuilder.Sql("""DROP TABLE IF EXISTS "MemorySearch";""");
            migrationBuilder.DropTable(
                name: "MemoryItems");
        }
    }
}
